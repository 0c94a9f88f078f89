"""The restoration filter: shape, cost, determinism, the numpy runtime against training's torch network, weight
files, and its trainer on a tiny input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsslic import restoration
from dsslic.restoration import RestoreConfig
from dsslic.training.restore import RestoreNet, macs_per_pixel, save


def _random_net(seed: int = 0, **kw) -> RestoreNet:
    torch.manual_seed(seed)
    net = RestoreNet(RestoreConfig(**kw))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


def _inputs(h: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    xc = np.clip(x.astype(int) + rng.integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    s = rng.integers(0, 14, (h, w)).astype(np.uint8)  # ids past num_labels share one embedding
    return x, xc, s


def test_starts_as_identity_and_is_cheap() -> None:
    x, xc, s = _inputs(37, 50)
    net = RestoreNet().eval()  # zero output convolution: x^ = x~ before training
    assert np.array_equal(restoration.apply(net, x, xc, s, 30), x)
    assert macs_per_pixel(net) <= 10_000
    assert restoration.runtime(net).macs_per_pixel == pytest.approx(macs_per_pixel(net))  # numpy's count = torch's


def test_numpy_runtime_matches_torch() -> None:
    """The codec runs the numpy copy of what training made: the same x^ as the torch network, up to float
    rounding on a handful of pixels (never more than one level)."""
    x, xc, s = _inputs(64, 80, 5)
    net = _random_net(2)
    with torch.no_grad():
        t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        ref = net(t(x), t(xc), torch.from_numpy(s.astype(np.int64))[None], torch.tensor([33.0]))
    ref = (ref.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy().astype(int)
    got = restoration.apply(net, x, xc, s, 33).astype(int)
    assert np.abs(got - ref).max() <= 1 and np.mean(got != ref) < 1e-3
    assert not np.array_equal(got, x)


def test_odd_sizes_tiles_and_threads_give_one_result() -> None:
    x, xc, s = _inputs(71, 45)
    net = _random_net()
    whole = restoration.apply(net, x, xc, s, 37)
    assert whole.shape == x.shape and whole.dtype == np.uint8
    assert not np.array_equal(whole, x)  # a random filter changes the image
    assert np.array_equal(restoration.apply(net, x, xc, s, 37, tile=32), whole)  # overlapping tiles: no seams
    assert not np.array_equal(restoration.apply(net, x, xc, s, 22), whole)  # q is an input


def test_weights_round_trip_and_id(tmp_path) -> None:
    net = _random_net(width=8, depth=1)
    save(net, tmp_path / "f.restore.safetensors")
    back = restoration.load(tmp_path / "f.restore.safetensors")  # numpy, torch-free
    assert back.filter_id == net.filter_id and back.cfg == net.cfg
    assert _random_net(1, width=8, depth=1).filter_id != net.filter_id
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="no restoration filter config"):
        restoration.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a safetensors"):
        restoration.load(tmp_path / "junk.safetensors")
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    tensors["head.bias"][0] += 1  # weights that are not the ones the id names
    from dsslic import zoo

    zoo.save(tmp_path / "t.restore.safetensors", tensors, {"name": "custom", "width": 8, "depth": 1, "num_labels": 11,
                                                           "emb": 4}, model_id=net.filter_id.hex())
    with pytest.raises(ValueError, match="do not match"):
        restoration.load(tmp_path / "t.restore.safetensors")


def test_trainer_learns_and_resumes(tmp_path) -> None:
    from dsslic.cli import main

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):  # x~ = x darkened: a filter learns to undo that within a few steps
        x = rng.integers(40, 216, (32, 40, 3), dtype=np.uint8)
        np.savez(data / f"im{i}.npz", x=x, s=np.zeros((32, 40), np.uint8), xt30=(x - 30).astype(np.uint8),
                 xc30=x, bytes30=np.array(100))
    out = tmp_path / "run"
    args = ["train-restore", "--data", str(data), "--out", str(out), "--steps", "6", "--batch", "2", "--crop", "16",
            "--width", "8", "--depth", "1", "--lr", "1e-3", "--val", "1", "--log-every", "3", "--ckpt-every", "3"]
    assert main(args) == 0
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) == 3
    assert float(log[-1].split(",")[4]) > float(log[-1].split(",")[3])  # held-out file: x^ beats x~
    assert main([*args[:6], "8", *args[7:], "--resume"]) == 0
    assert len((out / "log.csv").read_text().splitlines()) == 4  # continued at step 6, one more row
    net = restoration.load(out / "custom.restore.safetensors")
    assert net.cfg.width == 8
    from dsslic.training.restore import load

    assert load(out / "custom.restore.safetensors").filter_id == net.filter_id  # back in torch, to train on
    # --init: a new run starts from those weights (ahead of a run from scratch); the wrong shape or name is exit 2
    def run(folder: str, *extra: str) -> int:
        return main(["train-restore", "--data", str(data), "--out", str(tmp_path / folder), "--steps", "3", "--batch",
                     "2", "--crop", "16", "--depth", "1", "--val", "1", "--log-every", "3", *extra])

    assert run("run2", "--width", "8", "--init", str(out / "custom.restore.safetensors")) == 0
    gain = [float((tmp_path / f / "log.csv").read_text().splitlines()[1].split(",")[5]) for f in ("run", "run2")]
    assert gain[1] > gain[0] > 0  # after 3 steps: ahead of the run that started from scratch
    assert run("run3", "--width", "6", "--init", str(out / "custom.restore.safetensors")) == 2  # wrong shape
    assert run("run4", "--width", "8", "--init", "nonesuch") == 2


def test_codec_round_trip_with_a_filter(tmp_path) -> None:
    """A file naming a filter decodes to what the encoder measured; without the field (or --no-restore) to x~;
    a decoder that lacks the filter refuses the file clearly."""
    from dsslic import DsslicFormatError, bitstream
    from dsslic.codec import Codec, psnr

    x, _, _ = _inputs(48, 64, 3)
    x = (x // 64 * 64 + 20).astype(np.uint8)  # flat patches: a small file
    net = _random_net(width=8, depth=1)
    enc = Codec("plain", segmenter="none", restore=net)
    chosen = enc.encode(x, quality=40)  # a random filter lowers the PSNR: the encoder leaves it out
    assert "restore" not in bitstream.parse(chosen.data).layer(bitstream.LayerKind.RESIDUAL).params
    enc.restore_always = True
    res = enc.encode(x, quality=40)
    hd = bitstream.parse(res.data)
    assert hd.layer(bitstream.LayerKind.RESIDUAL).params["restore"] == (net.filter_id, 40)
    y = Codec("plain", restore=net).decode(res.data)
    assert abs(psnr(x, y) - res.psnr) < 1e-9  # closed loop: the encoder reports the decoder's output
    plain = Codec("plain", segmenter="none", restore=False).encode(x, quality=40)
    assert len(plain.data) == len(res.data) - 7 and plain.data == chosen.data  # the field: tag, length, id, QP
    x_tilde = Codec("plain", restore=False).decode(res.data)
    assert np.array_equal(x_tilde, Codec("plain").decode(plain.data))
    assert not np.array_equal(x_tilde, y)
    with pytest.raises(DsslicFormatError, match="restoration filter id"):
        Codec("plain").decode(res.data)  # no shipped filter has this id
    save(_random_net(1, width=8, depth=1), tmp_path / "other.restore.safetensors")
    with pytest.raises(DsslicFormatError, match="the one given"):
        Codec("plain", restore=str(tmp_path / "other.restore.safetensors")).decode(res.data)


def test_cli_refuses_a_missing_filter_and_decodes_without_it_when_asked(tmp_path, capsys) -> None:
    from pathlib import Path

    from dsslic.cli import main

    golden = Path(__file__).parent / "golden" / "v2-plain-hevc-restore.dsslic"  # names an unshipped filter
    out = tmp_path / "y.png"
    assert main(["decompress", str(golden), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "restoration filter id" in err and "--no-restore" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["decompress", str(golden), "-o", str(out), "--no-restore"]) == 0 and out.is_file()


_DECODE = """
import hashlib, sys
from pathlib import Path
from dsslic.codec import Codec
y = Codec(sys.argv[3], restore=sys.argv[2]).decode(Path(sys.argv[1]).read_bytes())
print(hashlib.sha256(y.tobytes()).hexdigest(), "torch" in sys.modules)
"""


def test_decoding_with_a_filter_is_torch_free_and_thread_independent(tmp_path) -> None:
    """The filter runs in numpy on both sides: a decoder needs no torch, and BLAS threads change no pixel."""
    import hashlib
    import os
    import subprocess
    import sys

    from test_npnet import _lean  # a tiny lean model: the one kind of model that runs in numpy

    from dsslic.codec import Codec

    x, _, _ = _inputs(64, 96, 4)
    x = (x // 32 * 32 + 10).astype(np.uint8)
    net = _random_net(3, width=8, depth=2)
    save(net, tmp_path / "f.restore.safetensors")
    model = str(_lean(tmp_path, "bicubic"))
    enc = Codec(model, segmenter="none", restore=str(tmp_path / "f.restore.safetensors"))
    enc.restore_always = True
    res = enc.encode(x, quality=35)
    (tmp_path / "x.dsslic").write_bytes(res.data)
    outs = set()
    for n in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}
        p = subprocess.run([sys.executable, "-c", _DECODE, str(tmp_path / "x.dsslic"),
                            str(tmp_path / "f.restore.safetensors"), model], capture_output=True, text=True, env=env,
                           timeout=120, check=True)
        outs.add(p.stdout.strip())
    y = Codec(model, restore=net).decode(res.data)
    assert outs == {f"{hashlib.sha256(y.tobytes()).hexdigest()} False"}


def test_files_of_the_previous_release_find_their_filter() -> None:
    """A replaced filter stays shipped under another name: a file names its filter by id, and the decoder must
    still find the previous release's (``lean-v1``) while the encoder names the current one."""
    from dsslic import zoo

    if zoo.default_model() != "lean":
        pytest.skip("the default model is not the lean one in this installation")
    old, new = restoration.by_id(bytes.fromhex("5326fcdc")), restoration.load(restoration.find("lean"))
    assert old.filter_id.hex() == "5326fcdc" and new.filter_id != old.filter_id
    assert zoo.name_for_id(new.filter_id, "restore") == "lean"


def test_decoding_an_older_file_does_not_change_the_encoders_filter() -> None:
    """A Codec that decoded a file naming the previous release's filter still names its own in the files it writes
    (the decoder's filters are kept apart from the encoder's)."""
    from dsslic import zoo
    from dsslic.codec import Codec

    if zoo.default_model() != "lean":
        pytest.skip("the default model is not the lean one in this installation")
    x = np.asarray(np.random.default_rng(3).integers(60, 200, (64, 96, 3)), np.uint8)
    old = Codec(restore="lean-v1", segmenter="none")
    old.restore_always = True
    old_file = old.encode(x, quality=37).data
    codec = Codec(segmenter="none")
    codec.restore_always = True
    before = codec.encode(x, quality=37).data
    assert before != old_file  # each names its own filter
    assert np.array_equal(codec.decode(old_file), old.decode(old_file))  # decoded with lean-v1, found by its id
    assert codec.encode(x, quality=37).data == before
    assert codec.restorer().filter_id == restoration.load(restoration.find("lean")).filter_id
