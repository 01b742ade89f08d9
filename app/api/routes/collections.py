"""Collections, their group access, and their documents."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from app.api.deps import ContainerDep, CurrentActor
from app.api.schemas import (
    CollectionIn,
    CollectionOut,
    CollectionPatch,
    DocumentOut,
    GrantOut,
    GrantsIn,
    UploadOut,
)
from app.services.documents import AddResult, client_file_name
from app.services.library import CollectionView, DocumentView, Upload

router = APIRouter(tags=["collections"])
docs_router = APIRouter(tags=["documents"])

READ_CHUNK = 1 << 20


def collection_out(view: CollectionView) -> CollectionOut:
    col = view.collection
    return CollectionOut(
        id=col.id,
        name=col.name,
        description=col.description,
        created_at=col.created_at,
        documents=view.documents,
        access=view.access,  # type: ignore[arg-type]
    )


@router.get("/collections", response_model=list[CollectionOut])
def list_collections(who: CurrentActor, c: ContainerDep) -> list[CollectionOut]:
    """The collections the caller may read."""
    return [collection_out(v) for v in c.library.list_collections(who)]


@router.post("/collections", response_model=CollectionOut, status_code=201)
def create_collection(body: CollectionIn, who: CurrentActor, c: ContainerDep) -> CollectionOut:
    """Create a collection (admins). Nobody else sees it until a group is granted access."""
    col = c.library.create_collection(who, body.name, description=body.description)
    return collection_out(CollectionView(col, "write", 0))


@router.get("/collections/{collection_id}", response_model=CollectionOut)
def get_collection(collection_id: str, who: CurrentActor, c: ContainerDep) -> CollectionOut:
    """One readable collection."""
    return collection_out(c.library.get_collection(who, collection_id))


@router.patch("/collections/{collection_id}", response_model=CollectionOut)
def update_collection(
    collection_id: str, body: CollectionPatch, who: CurrentActor, c: ContainerDep
) -> CollectionOut:
    """Rename or describe a collection (needs write access)."""
    view = c.library.update_collection(
        who, collection_id, name=body.name, description=body.description
    )
    return collection_out(view)


@router.delete("/collections/{collection_id}", status_code=204)
def delete_collection(collection_id: str, who: CurrentActor, c: ContainerDep) -> None:
    """Delete a collection with all its documents (admins)."""
    c.library.delete_collection(who, collection_id)


@router.get("/collections/{collection_id}/access", response_model=list[GrantOut])
def get_access(collection_id: str, who: CurrentActor, c: ContainerDep) -> list[GrantOut]:
    """Which groups may read or write the collection (admins)."""
    return [GrantOut(**g.__dict__) for g in c.library.grants(who, collection_id)]


@router.put("/collections/{collection_id}/access", response_model=list[GrantOut])
def set_access(
    collection_id: str, body: GrantsIn, who: CurrentActor, c: ContainerDep
) -> list[GrantOut]:
    """Replace the groups' access to the collection; documents inherit it (admins)."""
    grants = c.library.set_grants(who, collection_id, dict(body.grants))
    return [GrantOut(**g.__dict__) for g in grants]


# -- documents --------------------------------------------------------------------------


def document_out(view: DocumentView) -> DocumentOut:
    doc, job = view.document, view.job
    return DocumentOut(
        id=doc.id,
        collection_id=doc.collection_id,
        name=doc.name,
        mime=doc.mime,
        size=doc.size,
        version=doc.version,
        status=doc.status,  # type: ignore[arg-type]
        error=doc.error,
        title=doc.title,
        page_count=doc.page_count,
        chunk_count=doc.chunk_count,
        created_at=doc.created_at,
        indexed_at=doc.indexed_at,
        job_id=job.id if job else None,
        stage=job.stage if job else None,
        progress=job.progress if job else 0.0,
        eta_s=view.eta_s,
        timings=dict(doc.timings or (job.timings if job else {}) or {}),
        parent_id=doc.parent_id,
    )


def upload_out(name: str, result: AddResult) -> UploadOut:
    return UploadOut(
        name=name,
        document_id=result.document_id,
        job_id=result.job_id,
        outcome=result.outcome,
        reason=result.reason,
    )


@docs_router.get("/collections/{collection_id}/documents", response_model=list[DocumentOut])
def list_documents(
    collection_id: str, who: CurrentActor, c: ContainerDep, status: str | None = None
) -> list[DocumentOut]:
    """Documents of a readable collection, with status, stage, progress, ETA and timings."""
    return [document_out(v) for v in c.library.list_documents(who, collection_id, status=status)]


@docs_router.post(
    "/collections/{collection_id}/documents", response_model=list[UploadOut], status_code=202
)
async def upload_documents(
    collection_id: str,
    files: Annotated[
        list[UploadFile], File(description="One or more files (multipart).", min_length=1)
    ],
    who: CurrentActor,
    c: ContainerDep,
) -> list[UploadOut]:
    """Upload files for ingestion (needs write access). Each is queued; files that are
    too large or empty are recorded as failed with the reason. Poll the document list
    for progress."""
    limit = c.library.max_file_bytes
    uploads = [await _received(f, limit) for f in files[: c.library.max_files_per_upload + 1]]
    results = await run_in_threadpool(c.library.upload, who, collection_id, uploads)
    return [upload_out(name, result) for name, result in results]


async def _received(f: UploadFile, limit: int) -> Upload:
    """The file's bytes, or only its size when it is over ``limit`` (not kept)."""
    data = bytearray()
    while chunk := await f.read(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            size = len(data)
            while rest := await f.read(READ_CHUNK):
                size += len(rest)
            return Upload(client_file_name(f.filename), None, size)
    return Upload(client_file_name(f.filename), bytes(data), len(data))


@docs_router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, who: CurrentActor, c: ContainerDep) -> DocumentOut:
    """One document with its ingestion status."""
    return document_out(c.library.get_document(who, document_id))


@docs_router.get(
    "/documents/{document_id}/file",
    response_class=Response,
    responses={
        200: {
            "description": "The file, as uploaded; text of any kind as text/plain.",
            "content": {
                "*/*": {"schema": {"type": "string", "format": "binary"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
def document_file(document_id: str, who: CurrentActor, c: ContainerDep) -> Response:
    """The uploaded file itself, to open at a cited page (PDFs: add ``#page=N``)."""
    doc, data = c.library.document_file(who, document_id)
    mime, disposition = _served_as(doc.mime)
    headers = {"Content-Disposition": f"{disposition}; {_filename_params(doc.name)}"}
    if mime != "application/pdf":
        # Even if a browser renders it, a stored file runs no script on this origin.
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return Response(data, media_type=mime, headers=headers)


def _served_as(mime: str | None) -> tuple[str, str]:
    """The type and disposition a stored file is sent with: PDFs open in the browser's
    viewer (at ``#page=N``), text as plain text (an uploaded HTML page shows as source),
    anything else is a download; an SVG or HTML never runs on Lantern's origin."""
    if mime == "application/pdf":
        return mime, "inline"
    if mime and mime.startswith("text/"):
        return "text/plain; charset=utf-8", "inline"
    return mime or "application/octet-stream", "attachment"


def _filename_params(name: str) -> str:
    """``filename=`` in ASCII for old clients and ``filename*=`` in UTF-8 (RFC 6266)."""
    ascii_name = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "._- ") else "_" for ch in name
    )
    return f"filename=\"{ascii_name[:200]}\"; filename*=UTF-8''{quote(name[:200], safe='')}"


@docs_router.delete("/documents/{document_id}", status_code=204)
def delete_document(document_id: str, who: CurrentActor, c: ContainerDep) -> None:
    """Delete a document: its text, chunks, vectors and stored file (needs write access)."""
    c.library.delete_document(who, document_id)


@docs_router.post("/documents/{document_id}/reindex", response_model=UploadOut, status_code=202)
def reindex_document(document_id: str, who: CurrentActor, c: ContainerDep) -> UploadOut:
    """Ingest the stored file again as a new version; the current one stays searchable
    until it is ready (needs write access)."""
    doc, result = c.library.reindex_document(who, document_id)
    return upload_out(doc.name, result)
