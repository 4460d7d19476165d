"""The vocabulary of a jump's phases and of the signals that found a freefall.

Its own module, without numpy or trio, because the database models store these values
(``video_file_segment.classification``) and everything that imports the models —
the CLI above all — should not pay for the detectors' imports (numpy alone costs
about 0.1 s of start-up).
"""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """``video_file_segment.classification`` values (the original's vocabulary)."""

    QR_CODE = "qr_code"
    GROUND_BEFORE = "ground_before"
    FLIGHT = "flight"
    FREEFALL = "freefall"
    CANOPY = "canopy"
    GROUND_AFTER = "ground_after"
    UNKNOWN = "unknown"


class FreefallSource(enum.StrEnum):
    """Which signal found a freefall."""

    AUDIO = "audio"
    TELEMETRY = "telemetry"
    BOTH = "both"
