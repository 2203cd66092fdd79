"""Errors the pipeline raises on purpose. Their text reaches the user as the SQL error message."""


class PgfacesError(Exception):
    """Base class: a problem with the input or the setup that the user can act on."""


class ImageError(PgfacesError):
    """The bytes are not an image we can read (empty, truncated, unknown format, corrupt)."""


class LimitError(PgfacesError):
    """The input is readable but exceeds a configured limit (bytes, pixels, faces)."""


class ModelError(PgfacesError):
    """A model cannot be loaded or run (missing file, no network for a hub model)."""


class ProfileError(PgfacesError):
    """A profile names an unknown detector or embedder, or has bad parameters."""
