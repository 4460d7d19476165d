"""Render jobs: options, plan (ffmpeg command), supervisor (claim, run, cancel, recover)."""
