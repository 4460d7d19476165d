"""FFmpeg and ffprobe: the one subprocess runner, media probing and tool checks."""
