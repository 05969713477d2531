"""Blobs a distributed search shares (learner states, candidate weights) through Optuna's artifact stores.

A blob is plain data with tensors, packed as the checkpoints are (tensors pulled out of a JSON
document and saved with `torch.save`, read back with `torch.load(weights_only=True)`: loading
never runs pickled code). The store is any Optuna `ArtifactStore`; `make_artifact_store` gives a
directory on a shared file system (`FileSystemArtifactStore`) or a bucket of an object store
(s3://BUCKET: `Boto3ArtifactStore`, gs://BUCKET: `GCSArtifactStore`). The study holds
each blob's reference, `{"artifact": id, "sha256": hex, "bytes": n}`, and a download whose bytes
do not hash to it is refused, so a corrupt or swapped file is never loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.train.checkpoint import join_tensors, split_tensors

FORMAT = 1


OBJECT_STORES = {"s3": ("Boto3ArtifactStore", "boto3"), "gs": ("GCSArtifactStore", "google-cloud-storage")}


def is_object_store(location: str | Path) -> bool:
    """Whether `location` names a bucket (s3://BUCKET or gs://BUCKET) rather than a directory."""
    return str(location).partition("://")[0] in OBJECT_STORES and "://" in str(location)


def make_artifact_store(location: str | Path) -> Any:
    """The artifact store at `location`: a directory (`FileSystemArtifactStore`, created when missing), or a
    bucket: s3://BUCKET (`Boto3ArtifactStore`: boto3's credentials and endpoint, e.g. AWS_ENDPOINT_URL for
    MinIO) or gs://BUCKET (`GCSArtifactStore`: Google's default credentials)."""
    import optuna.artifacts

    scheme, sep, bucket = str(location).partition("://")
    if sep:
        if scheme not in OBJECT_STORES or not bucket.strip("/") or "/" in bucket.strip("/"):
            raise SelfgrowError(f"Artifact location {str(location)!r} is not supported; accepted: a directory, "
                                "s3://BUCKET or gs://BUCKET (a whole bucket: Optuna's stores take no prefix).")
        store, package = OBJECT_STORES[scheme]
        try:
            return getattr(optuna.artifacts, store)(bucket.strip("/"))
        except ImportError as err:
            raise SelfgrowError(f"Artifacts in {location} need the {package} package; pip install {package} on "
                                "the coordinator's and every worker's machine.") from err
    path = Path(location).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SelfgrowError(f"Cannot use {str(path)!r} as the artifact directory ({err.strerror or err}); "
                            "give a writable directory every worker can reach.") from err
    return optuna.artifacts.FileSystemArtifactStore(path)


def pack(state: dict[str, Any]) -> bytes:
    """`state` (plain data and tensors) as bytes: the JSON part and the flat tensors in one `torch.save`."""
    tensors: dict[str, torch.Tensor] = {}
    plain = split_tensors(state, tensors)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "state": json.dumps(plain), "tensors": tensors}, buffer)
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, Any]:
    """The state `pack` packed (tuples come back as lists)."""
    try:
        blob = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        if blob.get("format") != FORMAT:
            raise ValueError(f"format {blob.get('format')!r} is not {FORMAT}")
        return join_tensors(json.loads(blob["state"]), blob["tensors"])
    except (ValueError, KeyError, RuntimeError, EOFError, AttributeError, pickle.UnpicklingError) as err:
        raise SelfgrowError(f"An artifact of the search cannot be read ({err}).") from err


def upload(store: Any, storage: Any, owner: Any, filename: str, data: bytes) -> dict[str, Any]:
    """Store `data` as an artifact of `owner` (a study or a trial) and return its reference."""
    from optuna.artifacts import upload_artifact

    folder = tempfile.mkdtemp(prefix="selfgrow-artifact-")
    path = os.path.join(folder, filename)
    try:
        with open(path, "wb") as f:
            f.write(data)
        artifact = upload_artifact(artifact_store=store, file_path=path, study_or_trial=owner, storage=storage)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(folder)
    return {"artifact": artifact, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def download(store: Any, ref: dict[str, Any]) -> bytes:
    """The bytes of the artifact `ref`, checked against its sha256."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        with store.open_reader(ref["artifact"]) as reader:
            data = reader.read()
    except (ArtifactNotFound, OSError) as err:
        raise SelfgrowError(f"Artifact {ref['artifact']} is missing from the artifact store ({err}); every worker "
                            "and the coordinator must use the same artifact location.") from err
    if hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise SelfgrowError(f"Artifact {ref['artifact']} does not match the sha256 the study recorded; it was "
                            "changed or damaged after upload.")
    return data
