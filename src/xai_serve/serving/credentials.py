"""The worker's view of an archive's ``credentials.json`` (see ``xai_serve.evaluation.credentials``).

At load time the handler calls :meth:`ServedCredentials.load`: the file's sha256 must equal the
``credentials_sha256`` recorded in ``model-config.yaml`` beside the weights' (a tampered, missing
or unrecorded file refuses the load with ``CheckpointError``), and the credentials must have been
measured on the archived weights. Then, per request, :meth:`check` refuses (``MethodRefusedError``,
FAILED_PRECONDITION, naming the failed check) a method that failed the sanity check when the
archive was built with ``--refuse-failed`` (off by default), :meth:`fill` puts the method's
credential summary on each heatmap, and :meth:`describe` is what the describe call returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import CheckpointError, MethodRefusedError
from xai_serve.evaluation import credentials as cred
from xai_serve.hashing import file_sha256

SHA_KEY = "credentials_sha256"  # model-config.yaml, under ``xai:``
REFUSE_KEY = "refuse_failed_methods"


class ServedCredentials:
    """The credentials of one served model (``doc`` None: the archive carries none)."""

    def __init__(self, doc: dict[str, Any] | None = None, *, refuse_failed: bool = False) -> None:
        if refuse_failed and doc is None:
            raise CheckpointError(f"{REFUSE_KEY} is set but the archive carries no {cred.FILE_NAME}")
        self.doc = doc
        self.refuse_failed = refuse_failed

    @classmethod
    def load(
        cls, model_dir: Path, xai_config: dict[str, Any], weights_sha256: str | None = None
    ) -> ServedCredentials:
        path = Path(model_dir) / cred.FILE_NAME
        expected = xai_config.get(SHA_KEY)
        refuse = bool(xai_config.get(REFUSE_KEY, False))
        if not expected:
            if path.exists():
                raise CheckpointError(
                    f"{cred.FILE_NAME} is in the archive but model-config.yaml records no {SHA_KEY}"
                )
            return cls(None, refuse_failed=refuse)
        if not path.is_file():
            raise CheckpointError(
                f"model-config.yaml records {SHA_KEY} but the archive has no {cred.FILE_NAME}"
            )
        if file_sha256(path) != expected:
            raise CheckpointError(f"{cred.FILE_NAME}: sha256 differs from the archive's model-config.yaml")
        doc = cred.load(path)
        if weights_sha256 and doc["checkpoint_sha256"] != weights_sha256:
            raise CheckpointError(f"{cred.FILE_NAME} was measured on other weights than the archive's")
        return cls(doc, refuse_failed=refuse)

    def check(self, method: str) -> None:
        """Raise ``MethodRefusedError`` if this archive refuses ``method``."""
        if not self.refuse_failed:
            return
        failed = cred.failed_check(self.doc, method)
        if failed:
            raise MethodRefusedError(f"method {method!r} is refused by this model's archive: {failed}")

    def fill(self, heatmap: pb.Heatmap, method: str) -> None:
        """Set ``heatmap.credential`` (left unset when the archive carries no credentials)."""
        if self.doc is not None:
            heatmap.credential.CopyFrom(pb.Credential(**cred.summary(self.doc, method)))

    def describe(self) -> dict[str, Any] | None:
        if self.doc is None:
            return None
        return {
            **self.doc,
            REFUSE_KEY: self.refuse_failed,
            "summary": {m: cred.summary(self.doc, m) for m in self.doc["methods"]},
        }
