"""The learned second enhancement layer: code x *given* the base layers, instead of x - x' with HEVC.

Conditional transform coding with a hyperprior (Ballé et al. 2018, Minnen et al. 2018)::

    y   = g_a(x, x')                       analysis, conditioned on the prediction x'
    z   = h_a(y);  z^ = round(z)           hyper-latent, per-channel learned prior
    mu, sigma = h_s(z^, c)                 entropy parameters from z^ and the compact image c
    q   = round(y - mu)                    range coded with the probability table of sigma's index
    x~  = x' + g_s(q + mu, f(x'))          synthesis, conditioned on features of x'

Why it can be exact across machines (the failure of CompressAI issue #279): the entropy parameters depend only
on integers the decoder holds bit-exactly (z^ and c; x' comes out of float networks and may differ by one level
between machines, so it conditions only the transforms, where a difference costs a hair of PSNR, not the
stream). h_s runs in integer arithmetic: integer weights (float weights times 2^12, rounded) and integer
activations, computed in float64 where every product and partial sum is an integer below 2^53, hence exact in
any summation order on any IEEE machine; sigma becomes a table index by integer thresholds; the probability
tables are integers stored with the weights. Entropy coding: ``constriction``'s range coder (Rust, maintained,
numpy>=2 compatible, unlike CompressAI 1.2.8 which pins numpy<2).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import zoo
from .errors import DsslicFormatError

FW = 12  # fraction bits of the integer weights of h_s
FA = 8  # fraction bits of its integer activations
ACT_LIMIT = 2.0**20  # activations are clamped to +-2^20 (real +-4096): partial sums stay far below 2^53
STRIDE = 64  # the hyper-latent's stride: images are padded to a multiple of it


@dataclass
class EnhanceConfig:
    """Everything needed to rebuild an EnhanceModel; stored as JSON in the weights' metadata."""

    name: str = "custom"
    n: int = 64  # channels of the transforms
    m: int = 96  # channels of y
    nz: int = 48  # channels of z
    lmbda: float = 0.01  # rate-distortion trade-off: loss = lmbda * 255^2 * MSE + bpp
    num_scales: int = 64  # entries of the sigma table
    sigma_min: float = 0.11
    sigma_max: float = 64.0
    y_range: int = 64  # q is coded in [-y_range, y_range] (clipped beyond)
    z_range: int = 32


class SimpleGDN(nn.Module):
    """Simplified GDN (Johnston et al. 2019): x / (beta + gamma |x|); inverse: x * (beta + gamma |x|)."""

    def __init__(self, ch: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(ch))
        self.gamma = nn.Parameter(0.1 * torch.eye(ch).view(ch, ch, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = F.conv2d(x.abs(), self.gamma.abs(), self.beta.abs() + 1e-6)
        return x * norm if self.inverse else x / norm


def _conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, s, k // 2)


def _deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, s, k // 2, output_padding=s - 1)


class IntegerHyperSynthesis(nn.Module):
    """h_s(z^, c) -> (mu, log sigma) at 1/16 of the size; trained in float, run in integers when coding."""

    def __init__(self, nz: int, n: int, m: int) -> None:
        super().__init__()
        self.z1, self.z2 = _deconv(nz, n), _deconv(n, n)  # 1/64 -> 1/16
        self.c1 = _conv(3, n, 3, 2)  # c (1/8) -> 1/16
        self.head = nn.Conv2d(2 * n, 2 * m, 1)

    @staticmethod
    def c_input(c8: torch.Tensor) -> torch.Tensor:
        """The compact image as the network sees it: (c - 128) / 64, exact at 6 fraction bits."""
        return (c8.float() - 128) / 64

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.z2(F.relu(self.z1(z))))
        b = F.relu(self.c1(c))
        return self.head(torch.cat([a, b], 1))

    # ---- integer execution (both sides of the codec, on the CPU)
    @staticmethod
    def _int_layer(a: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        w = torch.round(layer.weight.detach().double().cpu() * 2**FW)
        b = torch.round(layer.bias.detach().double().cpu() * 2 ** (FA + FW))
        if w.abs().max() >= 2**16:
            raise ValueError("h_s weight too large for exact integer execution")
        if isinstance(layer, nn.ConvTranspose2d):
            acc = F.conv_transpose2d(a, w, b, layer.stride, layer.padding, layer.output_padding)
        else:
            acc = F.conv2d(a, w, b, layer.stride, layer.padding)
        return torch.floor((acc + 2 ** (FW - 1)) / 2**FW).clamp(-ACT_LIMIT, ACT_LIMIT)

    def forward_int(self, zq: np.ndarray, c8: np.ndarray) -> np.ndarray:
        """Integer (mu, log sigma) * 2^FA from integer z^ (nz, h, w) and uint8 c (3, 4h*2, 4w*2)."""
        with torch.no_grad():
            z = torch.from_numpy(zq.astype(np.float64))[None] * 2**FA
            c = (torch.from_numpy(c8.astype(np.float64))[None] - 128) * 2 ** (FA - 6)
            a = self._int_layer(self._int_layer(z, self.z1).clamp_min(0), self.z2).clamp_min(0)
            b = self._int_layer(c, self.c1).clamp_min(0)
            return self._int_layer(torch.cat([a, b], 1), self.head)[0].numpy()


def _gaussian_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2))


def _likelihood(v: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(round(v) = v) under N(mu, sigma) integrated over the unit bin (v noisy in training)."""
    d = (v - mu).abs()  # symmetric: use the upper tail for accuracy
    p = _gaussian_cdf((0.5 - d) / sigma) - _gaussian_cdf((-0.5 - d) / sigma)
    return p.clamp_min(1e-9)


def _int_table(p: np.ndarray, total_bits: int = 16) -> np.ndarray:
    """Probabilities -> integer frequencies summing to 2^total_bits, none zero."""
    n = p.shape[-1]
    f = np.maximum(1, np.floor(p / p.sum(-1, keepdims=True) * (2**total_bits - n)).astype(np.int64))
    f[..., n // 2] += 2**total_bits - f.sum(-1)  # the centre absorbs what rounding left over
    return f.astype(np.int32)


class EnhanceModel(nn.Module):
    """The conditional codec of x given x' (prediction) and c (compact image)."""

    def __init__(self, config: EnhanceConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or EnhanceConfig()
        n, m, nz = cfg.n, cfg.m, cfg.nz
        self.g_a = nn.Sequential(_conv(6, n), SimpleGDN(n), _conv(n, n), SimpleGDN(n), _conv(n, n), SimpleGDN(n),
                                 _conv(n, m))
        self.cond = nn.Sequential(_conv(3, n), nn.ReLU(True), _conv(n, n), nn.ReLU(True), _conv(n, n),
                                  nn.ReLU(True), _conv(n, n))
        self.g_s = nn.Sequential(_deconv(m + n, n), SimpleGDN(n, True), _deconv(n, n), SimpleGDN(n, True),
                                 _deconv(n, n), SimpleGDN(n, True), _deconv(n, 3))
        self.h_a = nn.Sequential(_conv(m, n, 3, 1), nn.ReLU(True), _conv(n, n), nn.ReLU(True), _conv(n, nz))
        self.h_s = IntegerHyperSynthesis(nz, n, m)
        self.z_loc = nn.Parameter(torch.zeros(nz))
        self.z_log_scale = nn.Parameter(torch.zeros(nz))
        # integer coding tables, frozen by update_tables() and stored with the weights
        self.register_buffer("y_table", torch.zeros(cfg.num_scales, 2 * cfg.y_range + 1, dtype=torch.int32))
        self.register_buffer("z_table", torch.zeros(nz, 2 * cfg.z_range + 1, dtype=torch.int32))
        self.register_buffer("thresholds", torch.zeros(cfg.num_scales - 1, dtype=torch.int64))
        self.update_tables()
        self._id: bytes | None = None

    # ---- training
    @property
    def _log_sigma_bounds(self) -> tuple[float, float]:
        return math.log(self.config.sigma_min), math.log(self.config.sigma_max)

    def forward(self, x: torch.Tensor, x_pred: torch.Tensor, c8: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass on [0, 1] images (sizes multiples of 64) and 0..255 compact images.

        Rate terms use additive uniform noise; the synthesis sees the rounded latent (straight-through), as in
        Minnen & Singh 2020. Returns x_hat and the bits of y and z per image.
        """
        xp = x_pred * 2 - 1
        y = self.g_a(torch.cat([x * 2 - 1, xp], 1))
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = z + (torch.round(z) - z).detach()
        p_z = _likelihood(z_noisy, self.z_loc.view(1, -1, 1, 1),
                          self.z_log_scale.exp().clamp_min(0.05).view(1, -1, 1, 1))
        params = self.h_s(z_hat, IntegerHyperSynthesis.c_input(c8))
        mu, log_sigma = params.chunk(2, 1)
        sigma = log_sigma.clamp(*self._log_sigma_bounds).exp()
        p_y = _likelihood(y + torch.empty_like(y).uniform_(-0.5, 0.5), mu, sigma)
        y_hat = mu + (torch.round(y - mu) - (y - mu)).detach() + (y - mu)
        x_hat = x_pred + self.g_s(torch.cat([y_hat, self.cond(xp)], 1))
        return {"x_hat": x_hat, "bits_y": -torch.log2(p_y).sum((1, 2, 3)), "bits_z": -torch.log2(p_z).sum((1, 2, 3))}

    # ---- integer tables
    @torch.no_grad()
    def update_tables(self) -> None:
        """Freeze the learned priors into integer tables (call before saving; the decoder only reads them)."""
        cfg = self.config
        lo, hi = self._log_sigma_bounds
        step = (hi - lo) / (cfg.num_scales - 1)
        sig = torch.exp(lo + step * torch.arange(cfg.num_scales, dtype=torch.float64))
        k = torch.arange(-cfg.y_range, cfg.y_range + 1, dtype=torch.float64)
        self.y_table.copy_(torch.from_numpy(_int_table(self._bins(k[None], 0.0, sig[:, None]))))
        self.thresholds.copy_(torch.round((lo + step * (torch.arange(cfg.num_scales - 1) + 0.5)) * 2**FA).long())
        kz = torch.arange(-cfg.z_range, cfg.z_range + 1, dtype=torch.float64)
        loc = self.z_loc.detach().double().cpu()[:, None]
        scale = self.z_log_scale.detach().double().cpu().exp().clamp_min(0.05)[:, None]
        self.z_table.copy_(torch.from_numpy(_int_table(self._bins(kz[None], loc, scale))))

    @staticmethod
    def _bins(k: torch.Tensor, loc, scale) -> np.ndarray:
        """Discretised Gaussian over the integers k, the tails folded into the end bins."""
        upper = _gaussian_cdf((k + 0.5 - loc) / scale)
        lower = _gaussian_cdf((k - 0.5 - loc) / scale)
        upper[..., -1], lower[..., 0] = 1.0, 0.0
        return (upper - lower).clamp_min(0).numpy()

    # ---- identity and storage
    @property
    def model_id(self) -> bytes:
        if self._id is None:
            self._id = zoo.digest(config=asdict(self.config), tensors=self.state_dict(), ints="int64")
        return self._id

    def save(self, path: str | os.PathLike, card: dict | None = None) -> None:
        """Weights-only safetensors: transforms in float16, h_s and priors in float32, tables as integers."""
        self.update_tables()
        sd = zoo.stored(self.state_dict(), keep32=("h_s.", "z_loc", "z_log_scale"))
        # hold exactly what is stored, so files written from this object decode with the saved weights
        self.load_state_dict({k: v.to(self.state_dict()[k].dtype) for k, v in sd.items()})
        self._id = None
        zoo.save(path, sd, asdict(self.config), card, model_id=self.model_id.hex())  # the id: found without torch

    @classmethod
    def load(cls, path: str | os.PathLike) -> EnhanceModel:
        sd, config = zoo.load(path, "enhancement-layer")
        model = cls(EnhanceConfig(**config))
        model.load_state_dict(sd)
        return model.eval()

    # ---- real bitstreams
    def _entropy_params(self, zq: np.ndarray, c8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.h_s.forward_int(zq, c8)
        m = self.config.m
        mu = out[:m] / 2**FA  # exact: a power-of-two division of an integer
        idx = np.searchsorted(self.thresholds.numpy(), out[m:].astype(np.int64), side="right")
        return mu, idx

    def _models(self):
        import constriction

        cat = constriction.stream.model.Categorical
        return ([cat(t.astype(np.float64), perfect=False) for t in self.y_table.numpy()],
                [cat(t.astype(np.float64), perfect=False) for t in self.z_table.numpy()])

    @staticmethod
    def _prepare(x: np.ndarray, c8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad an HxWx3 image to multiples of 64 and its compact image (1/8) to match."""
        from .tiling import pad_to as _pad_to

        xp = _pad_to(x, STRIDE)
        cp = _pad_to(c8, STRIDE // 8)[: xp.shape[0] // 8, : xp.shape[1] // 8]
        if cp.shape[:2] != (xp.shape[0] // 8, xp.shape[1] // 8):
            raise ValueError("the learned enhancement layer needs a compact image at 1/8 of the size")
        return xp, cp

    @staticmethod
    def _t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float() / 255

    def _range_code(self, zq: np.ndarray, idx: np.ndarray, q: np.ndarray) -> bytes:
        """The range-coded body of a payload: z channel by channel, then y grouped by table (the decoder knows
        every index before it starts)."""
        import constriction

        cfg = self.config
        y_models, z_models = self._models()
        enc = constriction.stream.queue.RangeEncoder()
        for ch in range(cfg.nz):
            enc.encode((zq[ch].ravel() + cfg.z_range).astype(np.int32), z_models[ch])
        flat_idx, flat_q = idx.ravel(), q.ravel() + cfg.y_range
        for i in np.unique(flat_idx):
            enc.encode(flat_q[flat_idx == i].astype(np.int32), y_models[i])
        return enc.get_compressed().astype("<u4").tobytes()

    @torch.inference_mode()
    def compress(self, x: np.ndarray, x_pred: np.ndarray, c8: np.ndarray, tile=None) -> tuple[bytes, np.ndarray]:
        """Code uint8 x (HxWx3) given the prediction x' and the compact image c; returns (payload, x~)."""
        h, w = x.shape[:2]
        from .tiling import pad_to as _pad_to

        xp_np, cp = self._prepare(x_pred, c8)
        xt, xpt = self._t(_pad_to(x, STRIDE)), self._t(xp_np)
        run = tile or (lambda fn, ins, facs, out_f: fn(*ins))
        y = run(lambda a, b: self.g_a(torch.cat([a * 2 - 1, b * 2 - 1], 1)), [xt, xpt], [1, 1], 16)
        z = self.h_a(y)
        cfg = self.config
        zq = torch.round(z)[0].clamp(-cfg.z_range, cfg.z_range).numpy().astype(np.int64)
        mu, idx = self._entropy_params(zq, cp.transpose(2, 0, 1))
        q = np.clip(np.rint(y[0].double().numpy() - mu), -cfg.y_range, cfg.y_range).astype(np.int64)
        payload = self.model_id + self._range_code(zq, idx, q)
        x_hat = self._synthesize(q + mu, xpt, run)[:h, :w]
        return payload, x_hat

    @torch.inference_mode()
    def decompress(self, payload: bytes, x_pred: np.ndarray, c8: np.ndarray, tile=None) -> np.ndarray:
        """Decode a payload of :meth:`compress` given the same x' and c; errors are DsslicFormatError."""
        import constriction

        if payload[:4] != self.model_id:
            raise DsslicFormatError(
                f"learned layer made with enhancement model id {payload[:4].hex()}; this decoder holds "
                f"{self.config.name!r} (id {self.model_id.hex()})")
        body = payload[4:]
        if len(body) % 4:
            raise DsslicFormatError("learned layer: stream length is not a whole number of 32-bit words")
        h, w = x_pred.shape[:2]
        xp_np, cp = self._prepare(x_pred, c8)
        cfg = self.config
        zh, zw = xp_np.shape[0] // STRIDE, xp_np.shape[1] // STRIDE
        y_models, z_models = self._models()
        try:
            dec = constriction.stream.queue.RangeDecoder(np.frombuffer(body, "<u4").astype(np.uint32))
            zq = np.stack([np.asarray(dec.decode(z_models[ch], zh * zw)) for ch in range(cfg.nz)])
            zq = zq.reshape(cfg.nz, zh, zw).astype(np.int64) - cfg.z_range
            mu, idx = self._entropy_params(zq, cp.transpose(2, 0, 1))
            flat_idx = idx.ravel()
            q = np.empty(flat_idx.shape, np.int64)
            for i in np.unique(flat_idx):
                sel = flat_idx == i
                q[sel] = np.asarray(dec.decode(y_models[i], int(sel.sum())))
        except (ValueError, RuntimeError, OverflowError, AssertionError) as e:  # constriction asserts on bad data
            raise DsslicFormatError(f"learned layer does not decode: {e}") from None
        q = q.reshape(mu.shape) - cfg.y_range
        # A range decoder reads past its end as zeros and ignores what it does not reach, so a truncated or padded
        # payload would decode to a wrong image: the body must be exactly the coding of what it decodes to.
        if self._range_code(zq, idx, q) != body:
            raise DsslicFormatError("learned layer is not the coding of what it decodes to (truncated, padded or "
                                    "altered)")
        run = tile or (lambda fn, ins, facs, out_f: fn(*ins))
        return self._synthesize(q + mu, self._t(xp_np), run)[:h, :w]

    def _synthesize(self, y_hat: np.ndarray, xpt: torch.Tensor, run) -> np.ndarray:
        yt = torch.from_numpy(y_hat).float()[None]
        f = run(lambda b: self.cond(b * 2 - 1), [xpt], [1], 16)
        r = run(lambda a, b: self.g_s(torch.cat([a, b], 1)), [yt, f], [16, 16], 1)
        x_hat = (xpt + r).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        return np.rint(x_hat * 255).astype(np.uint8)


def shipped() -> list[str]:
    """Names of the enhancement models inside the package (``weights/enhance-NAME.safetensors``)."""
    return zoo.names("enhance")


def load(name_or_path: str | None) -> EnhanceModel:
    """A shipped enhancement model by name, a path, or (None) the first shipped one."""
    from .errors import DsslicInputError

    if name_or_path is None:
        if not shipped():
            raise DsslicInputError("no learned enhancement model is installed; pass --enhance WEIGHTS.safetensors "
                                   "(train one with `dsslic train-enhance`)")
        name_or_path = shipped()[0]
    p = zoo.find(name_or_path, "enhance")  # a name is shipped; only X.safetensors or a/b is a path
    if p is not None:
        return EnhanceModel.load(p)
    raise DsslicInputError(f"unknown enhancement model {name_or_path!r}; shipped: {', '.join(shipped()) or 'none'} "
                           "(or a .safetensors path)")


def for_id(model_id: bytes) -> EnhanceModel:
    """The shipped enhancement model with this id (the one a file names), or a format error."""
    found = zoo.name_for_id(model_id, "enhance")  # files written before save() stored the id are loaded to compare
    for name in [found] if found else [n for n in shipped() if n not in zoo.ids("enhance").values()]:
        m = load(name)
        if m.model_id == model_id:
            return m
    raise DsslicFormatError(f"file needs learned enhancement model id {model_id.hex()}, which is not installed; "
                            "pass --enhance with its weights")
