"""Stinercut service: the backend of a video-editing platform for tandem-skydiving centres."""

__version__ = "0.1.0"
SERVICE_NAME = "stinercut-svc"
