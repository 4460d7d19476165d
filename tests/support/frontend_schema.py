"""The web frontend's own DDL for the five shared tables, written down from
``FRONTEND_CONTRACT.md`` (MariaDB, as its migrations leave them), plus its
default settings rows.

Tests use it two ways: to build a database "the frontend's way" that the service
must adopt, and as the reference the service-made schema is compared with.
The statements follow the shape the frontend's schema builder emits: one
``CREATE TABLE`` with the columns, then one ``ALTER TABLE`` per index and
foreign key, under the builder's names (``<table>_<columns>_index|unique|foreign``).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

TABLE_OPTIONS = "DEFAULT CHARACTER SET utf8mb4 COLLATE 'utf8mb4_unicode_ci' ENGINE = InnoDB"

FRONTEND_DDL: tuple[str, ...] = (
    # project
    "CREATE TABLE `project` (`id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " `uuid` char(36) NOT NULL DEFAULT (UUID()), `name` varchar(255) NOT NULL,"
    " `status` enum('draft','processing','completed','error') NOT NULL DEFAULT 'draft',"
    " `settings` json NULL, `created_at` timestamp NULL, `updated_at` timestamp NULL) "
    + TABLE_OPTIONS,
    "ALTER TABLE `project` ADD UNIQUE `project_uuid_unique`(`uuid`)",
    "ALTER TABLE `project` ADD INDEX `project_status_index`(`status`)",
    "ALTER TABLE `project` ADD INDEX `project_created_at_index`(`created_at`)",
    # video
    "CREATE TABLE `video` (`id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " `uuid` char(36) NOT NULL DEFAULT (UUID()), `project_id` bigint unsigned NOT NULL,"
    " `filename` varchar(255) NOT NULL, `path` varchar(512) NOT NULL, `duration` double NULL,"
    " `width` int NULL, `height` int NULL, `codec` varchar(50) NULL, `fps` double NULL,"
    " `order` int NOT NULL DEFAULT '0', `in_point` double NULL, `out_point` double NULL,"
    " `created_at` timestamp NULL, `updated_at` timestamp NULL) " + TABLE_OPTIONS,
    "ALTER TABLE `video` ADD UNIQUE `video_uuid_unique`(`uuid`)",
    "ALTER TABLE `video` ADD CONSTRAINT `video_project_id_foreign` FOREIGN KEY (`project_id`)"
    " REFERENCES `project` (`id`) ON DELETE CASCADE",
    "ALTER TABLE `video` ADD INDEX `video_project_id_index`(`project_id`)",
    "ALTER TABLE `video` ADD INDEX `video_project_id_order_index`(`project_id`, `order`)",
    # job
    "CREATE TABLE `job` (`id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " `uuid` char(36) NOT NULL DEFAULT (UUID()), `project_id` bigint unsigned NOT NULL,"
    " `status` enum('pending','processing','completed','failed','cancelled') NOT NULL"
    " DEFAULT 'pending', `progress` int NOT NULL DEFAULT '0', `started_at` timestamp NULL,"
    " `completed_at` timestamp NULL, `output_path` varchar(512) NULL, `error_message` text NULL,"
    " `created_at` timestamp NULL, `updated_at` timestamp NULL) " + TABLE_OPTIONS,
    "ALTER TABLE `job` ADD UNIQUE `job_uuid_unique`(`uuid`)",
    "ALTER TABLE `job` ADD CONSTRAINT `job_project_id_foreign` FOREIGN KEY (`project_id`)"
    " REFERENCES `project` (`id`) ON DELETE CASCADE",
    "ALTER TABLE `job` ADD INDEX `job_project_id_index`(`project_id`)",
    "ALTER TABLE `job` ADD INDEX `job_status_index`(`status`)",
    "ALTER TABLE `job` ADD INDEX `job_project_id_status_index`(`project_id`, `status`)",
    # asset
    "CREATE TABLE `asset` (`id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " `uuid` char(36) NOT NULL DEFAULT (UUID()),"
    " `type` enum('intro','outro','watermark','audio','audio_freefall','pax_template') NOT NULL,"
    " `name` varchar(255) NOT NULL, `path` varchar(512) NOT NULL,"
    " `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP) " + TABLE_OPTIONS,
    "ALTER TABLE `asset` ADD UNIQUE `asset_uuid_unique`(`uuid`)",
    "ALTER TABLE `asset` ADD INDEX `asset_type_index`(`type`)",
    "ALTER TABLE `asset` ADD INDEX `asset_type_name_index`(`type`, `name`)",
    # setting (its migration adds `options` first in the column list of this release)
    "CREATE TABLE `setting` (`id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " `key` varchar(255) NOT NULL, `value` text NULL,"
    " `type` enum('string','integer','boolean','json') NOT NULL DEFAULT 'string',"
    " `options` text NULL, `category` varchar(100) NOT NULL, `label` varchar(255) NOT NULL,"
    " `description` text NULL, `created_at` timestamp NULL, `updated_at` timestamp NULL) "
    + TABLE_OPTIONS,
    "ALTER TABLE `setting` ADD UNIQUE `setting_key_unique`(`key`)",
    "ALTER TABLE `setting` ADD INDEX `setting_category_index`(`category`)",
)

#: The frontend's default settings rows (contract): key, type, value, options,
#: category, label, description.
FRONTEND_SETTINGS: tuple[tuple[str, str, str, str | None, str, str, str], ...] = (
    ("video.default_codec", "string", "h264", '["h264", "h265", "vp9", "av1"]', "video",
     "Default Codec", "Default video codec for output files"),
    ("video.default_resolution", "string", "1920x1080",
     '["1280x720", "1920x1080", "2560x1440", "3840x2160"]', "video", "Default Resolution",
     "Default output resolution (width x height)"),
    ("video.default_fps", "integer", "30", None, "video", "Default Frame Rate",
     "Default frames per second for output"),
    ("video.default_bitrate", "string", "8M", None, "video", "Default Bitrate",
     "Default video bitrate (e.g., 8M, 12M)"),
    ("storage.upload_path", "string", "/shared-videos/uploads", None, "storage", "Upload Path",
     "Directory for uploaded video files"),
    ("storage.output_path", "string", "/shared-videos/output", None, "storage", "Output Path",
     "Directory for processed video files"),
    ("storage.temp_path", "string", "/shared-videos/temp", None, "storage", "Temp Path",
     "Directory for temporary processing files"),
    ("storage.max_upload_size", "integer", "5368709120", None, "storage", "Max Upload Size",
     "Maximum upload file size in bytes (default: 5GB)"),
)  # fmt: skip


def create_frontend_tables(conn: Connection, *, seed: bool = True) -> None:
    """The five tables as the frontend's migrations create them, with its seed rows.

    The frontend writes ``created_at`` as its local (UTC) wall-clock time.
    """
    for statement in FRONTEND_DDL:
        conn.exec_driver_sql(statement)
    if seed:
        for key, kind, value, options, category, label, description in FRONTEND_SETTINGS:
            conn.execute(
                text(
                    "INSERT INTO `setting` (`key`, `value`, `type`, `options`, `category`,"
                    " `label`, `description`, `created_at`, `updated_at`) VALUES"
                    " (:k, :v, :t, :o, :c, :l, :d, UTC_TIMESTAMP(), UTC_TIMESTAMP())"
                ),
                {"k": key, "v": value, "t": kind, "o": options, "c": category, "l": label,
                 "d": description},
            )  # fmt: skip
