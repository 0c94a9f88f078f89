"""Exceptions and warnings raised by dsslic.

Both error types subclass ``ValueError`` so that callers who treat any bad input as a
value problem keep working; the CLI maps them to exit code 2 with one line of text.
"""

from __future__ import annotations


class DsslicError(ValueError):
    """Base class for every error dsslic raises on purpose."""


class DsslicFormatError(DsslicError):
    """A ``.dsslic`` file (or a layer inside it) is malformed, corrupt or unsupported."""


class DsslicInputError(DsslicError):
    """An input image or argument cannot be used (not an image, too large, ...)."""


class DsslicWarning(UserWarning):
    """Something was converted lossily on the way in (alpha dropped, 16 bit to 8 bit, ...)."""
