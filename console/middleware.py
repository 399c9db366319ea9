"""Static files (htmx, the admin's CSS) served by the app itself, in every environment."""

from __future__ import annotations

import os

from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, reading each app's static/ folder through Django's finders
    (WHITENOISE_USE_FINDERS), so neither `./dev up` nor the container image needs a
    collectstatic step. STATIC_ROOT is still served when it exists (after collectstatic);
    when it does not, plain WhiteNoise warns "No directory at ..." on every start
    (evansd/whitenoise#215), which is noise here, so a missing folder is skipped quietly."""

    def add_files(self, root, prefix=None):
        if self.autorefresh or os.path.isdir(root):
            super().add_files(root, prefix)
