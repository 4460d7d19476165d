"""ORM models: the seed's five tables, shared with the separate web frontend.

Table names, columns and enum values are a contract with the frontend: change
them only through a migration that the frontend can live with.
"""

from . import ingest  # noqa: F401  (import_batch, video_file, video_file_segment, jump, ...)
from .asset import Asset, AssetType
from .base import Base, isoformat, new_uuid, utcnow
from .job import Job, JobStatus
from .job_output import JobOutput
from .project import Project, ProjectStatus
from .setting import Setting, SettingType, parse_setting_value
from .share import ShareLink
from .video import Video
from .webhook import DeliveryStatus, WebhookDelivery

__all__ = [
    "Asset",
    "AssetType",
    "Base",
    "Job",
    "JobStatus",
    "JobOutput",
    "Project",
    "ProjectStatus",
    "Setting",
    "SettingType",
    "ShareLink",
    "Video",
    "DeliveryStatus",
    "WebhookDelivery",
    "isoformat",
    "new_uuid",
    "parse_setting_value",
    "utcnow",
]
