"""A large commit's chunks uploaded while records are still being read.

A commit's file is cut into chunks (``chunk_size_mb``); a big stream in ``all`` mode makes
many. Compressing and sending them all at commit would leave the network idle while the
stream is read and the reading idle while the file is sent. Instead, each chunk the spool
finishes goes at once to a worker thread, which compresses and sends it (zlib and the
socket release the GIL, so this runs beside the reading): by the end of input most of the
file is in Anaplan, and the commit sends only the rest, completes the upload and runs the
imports, as before.

The run's lock on the file (machine-wide, or the shared PostgreSQL one) is taken with the
first chunk and held until the commit's imports are done. The worker takes chunk numbers
from a queue and reads each chunk from the spool file itself, so memory holds only the
chunk being compressed. An upload the worker could not finish for a transient reason is
made again from chunk 0 at commit, as ``upload_file`` would (with its own retry deadline);
a refusal is raised at commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING

from target_anaplan.anaplan.upload import Upload, UploadStats, restartable, upload_file

if TYPE_CHECKING:
    from target_anaplan.anaplan.client import AnaplanClient
    from target_anaplan.anaplan.models import ModelRef
    from target_anaplan.spool import Spool

logger = logging.getLogger(__name__)


class EarlyUpload:
    """The upload of one commit's file, begun before the commit (see the module)."""

    def __init__(
        self,
        client: AnaplanClient,
        model: ModelRef,
        file_id: str,
        spool: Spool,
        locks: ExitStack,
    ) -> None:
        self._client = client
        self._model = model
        self._file_id = file_id
        self._spool = spool
        self._held = locks  # the file's locks: from the first chunk until the imports are done
        self._queued = 0  # chunks handed to the worker
        self._chunks: queue.Queue[int | None] = queue.Queue()
        self._upload: Upload | None = None
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="early-upload", daemon=True)
        self._worker.start()

    def chunks_finished(self) -> None:
        """Hand the chunks the spool has finished since the last call to the worker."""
        finished = self._spool.finished_chunks
        if finished > self._queued:
            self._spool.flush()
            for index in range(self._queued, finished):
                self._chunks.put(index)
            self._queued = finished

    def _work(self) -> None:
        while (index := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self._sending().send(self._spool.chunk_at(index))
                except Exception as error:  # judged at commit, on the main thread
                    self._error = error

    def _sending(self) -> Upload:
        if self._upload is None:
            self._upload = Upload(self._client, self._model, self._file_id)
        return self._upload

    def finish(self) -> UploadStats:
        """At commit: wait for the worker, send the chunks left and complete the upload;
        after a transient failure, upload the whole file again from chunk 0."""
        self._stop()
        self._spool.flush()  # the chunks left are read through another handle
        if self._error is None:
            try:
                upload = self._sending()
                upload.total = self._spool.chunk_count
                for index in range(upload.chunks, self._spool.chunk_count):
                    upload.send(self._spool.chunk_at(index))
                return upload.complete()
            except Exception as error:  # as the worker's: judged below
                self._error = error
        failed = self._error
        if not restartable(failed):
            raise failed
        logger.warning(
            "Upload of file %s failed (%s); uploading it again from chunk 0",
            self._file_id,
            failed,
        )
        return upload_file(
            self._client,
            self._model,
            self._file_id,
            self._spool.chunk_pieces,
            total_chunks=self._spool.chunk_count,
        )

    def _stop(self) -> None:
        if self._worker.is_alive():
            self._chunks.put(None)
            self._worker.join()

    def close(self) -> None:
        """Release the file's locks: after the commit (``finish`` stopped the worker), or
        when the run ends (the worker, a daemon thread, is told to stop and not waited for:
        a chunk it is sending must not delay the exit)."""
        if self._worker.is_alive():
            self._chunks.put(None)
        self._held.close()
