"""Cost of the re-insert lookup that POST /api/imports / device.mounted now do before
creating a batch: scan the card (stat only) and match its files against imported_file.

    .venv/bin/python bench/ingest_reinsert.py [DATABASE_URL]

A 200-file card (3 MiB files) whose files belong to an error batch (one other batch of
200 unrelated files too); prints the median of 20 lookups of each step.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.database import Database  # noqa: E402
from stinercut_svc.models.ingest import (  # noqa: E402
    BatchStatus,
    ImportBatch,
    ImportedFile,
    SourceKind,
)
from stinercut_svc.schema import upgrade  # noqa: E402
from stinercut_svc.services import imports  # noqa: E402
from tests.support.cards import write_bytes_file  # noqa: E402

MIB = 1024 * 1024
FILES = 200


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="reinsert-"))
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{work}/db.sqlite"
    card = work / "card"
    for n in range(FILES):
        write_bytes_file(card / "DCIM" / "100GOPRO" / f"GX01{n + 1:04d}.MP4", 3 * MIB, seed=n)
    ids = imports._card_identities(card)
    db = Database(url)
    upgrade(db.engine)
    with Session(db.engine) as session, session.begin():
        for status, names in ((BatchStatus.ERROR, ids), (BatchStatus.RESOLVED, None)):
            batch = ImportBatch(source_kind=SourceKind.CARD, mount_path=str(card), status=status)
            session.add(batch)
            session.flush()
            rows = names or [(f"100GOPRO/OTHER{n:04d}.MP4", 1, 1) for n in range(FILES)]
            for rel, size, mtime in rows:
                session.add(
                    ImportedFile(
                        import_batch_id=batch.id, source_path=rel, size_bytes=size,
                        mtime_ns=mtime, stored_path=f"input/{batch.uuid}/{rel}",
                    )
                )  # fmt: skip
    scans, finds = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        ids = imports._card_identities(card)
        t1 = time.perf_counter()
        with Session(db.engine) as session, session.begin():
            found = imports.find_card_batch(session, mount_path="/elsewhere", identities=ids)
        t2 = time.perf_counter()
        scans.append(t1 - t0)
        finds.append(t2 - t1)
    assert found is not None and found[1] is BatchStatus.ERROR, found
    print(f"backend {db.backend}, card of {len(ids)} files, imported_file rows {2 * FILES}")
    print(f"  card scan (stat)          median {statistics.median(scans) * 1000:6.1f} ms")
    print(f"  match against imported_file median {statistics.median(finds) * 1000:6.1f} ms")
    db.engine.dispose()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
