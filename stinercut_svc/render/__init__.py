"""The customer video: timeline model, compiler to one ffmpeg run, and its recipes."""
