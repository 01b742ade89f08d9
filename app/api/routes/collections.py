"""Collections, their group access, and their documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Request, Response, UploadFile

from app.api.deps import AdminUser, ContainerDep, CurrentUser, client_ip
from app.api.schemas import (
    CollectionIn,
    CollectionOut,
    CollectionPatch,
    DocumentOut,
    GrantOut,
    GrantsIn,
    UploadOut,
)
from app.container import Container
from app.db.models import Collection, Document, IngestionJob
from app.errors import InvalidInput, NotFound
from app.services.auth import Principal
from app.services.documents import upload_name
from app.services.indexing import eta_seconds

router = APIRouter(tags=["collections"])
docs_router = APIRouter(tags=["documents"])

READ_CHUNK = 1 << 20


def collection_out(col: Collection, writable: set[str], counts: dict[str, int]) -> CollectionOut:
    access: Literal["read", "write"] = "write" if col.id in writable else "read"
    return CollectionOut(
        id=col.id,
        name=col.name,
        description=col.description,
        created_at=col.created_at,
        documents=counts.get(col.id, 0),
        access=access,
    )


@router.get("/collections", response_model=list[CollectionOut])
def list_collections(who: CurrentUser, c: ContainerDep) -> list[CollectionOut]:
    """The collections the caller may read."""
    counts = c.collections.document_counts()
    cols = c.collections.list_collections(c.access.readable(who))
    writable = c.access.writable(who)
    return [collection_out(col, writable, counts) for col in cols]


@router.post("/collections", response_model=CollectionOut, status_code=201)
def create_collection(
    body: CollectionIn, request: Request, who: AdminUser, c: ContainerDep
) -> CollectionOut:
    """Create a collection (admins). Nobody else sees it until a group is granted access."""
    col = c.collections.create(body.name, description=body.description)
    c.audit.record(
        "collection.create",
        who,
        target_type="collection",
        target_id=col.id,
        ip=client_ip(request),
        details={"name": col.name},
    )
    return collection_out(col, {col.id}, {})


@router.get("/collections/{collection_id}", response_model=CollectionOut)
def get_collection(collection_id: str, who: CurrentUser, c: ContainerDep) -> CollectionOut:
    """One readable collection."""
    c.access.check_read(who, collection_id)
    col = c.collections.get(collection_id)
    return collection_out(col, c.access.writable(who), c.collections.document_counts())


@router.patch("/collections/{collection_id}", response_model=CollectionOut)
def update_collection(
    collection_id: str, body: CollectionPatch, request: Request, who: CurrentUser, c: ContainerDep
) -> CollectionOut:
    """Rename or describe a collection (needs write access)."""
    c.access.check_write(who, collection_id)
    col = c.collections.update(collection_id, name=body.name, description=body.description)
    c.audit.record(
        "collection.update",
        who,
        target_type="collection",
        target_id=col.id,
        ip=client_ip(request),
        details={"name": col.name},
    )
    return collection_out(col, {col.id}, c.collections.document_counts())


@router.delete("/collections/{collection_id}", status_code=204)
def delete_collection(
    collection_id: str, request: Request, who: AdminUser, c: ContainerDep
) -> None:
    """Delete a collection with all its documents (admins)."""
    n = c.collections.delete(
        collection_id, documents=c.documents, vectors=c.vectors, lexical=c.lexical
    )
    c.audit.record(
        "collection.delete",
        who,
        target_type="collection",
        target_id=collection_id,
        ip=client_ip(request),
        details={"documents": n},
    )


@router.get("/collections/{collection_id}/access", response_model=list[GrantOut])
def get_access(collection_id: str, who: AdminUser, c: ContainerDep) -> list[GrantOut]:
    """Which groups may read or write the collection."""
    c.collections.get(collection_id)
    return [GrantOut(**g.__dict__) for g in c.access.grants(collection_id)]


@router.put("/collections/{collection_id}/access", response_model=list[GrantOut])
def set_access(
    collection_id: str, body: GrantsIn, request: Request, who: AdminUser, c: ContainerDep
) -> list[GrantOut]:
    """Replace the groups' access to the collection; documents inherit it."""
    grants = c.access.set_grants(collection_id, dict(body.grants))
    c.audit.record(
        "collection.access",
        who,
        target_type="collection",
        target_id=collection_id,
        ip=client_ip(request),
        details={"grants": dict(body.grants)},
    )
    return [GrantOut(**g.__dict__) for g in grants]


# -- documents --------------------------------------------------------------------------


def document_out(doc: Document, job: IngestionJob | None) -> DocumentOut:
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
        eta_s=eta_seconds(job),
        timings=dict(doc.timings or (job.timings if job else {}) or {}),
    )


@docs_router.get("/collections/{collection_id}/documents", response_model=list[DocumentOut])
def list_documents(
    collection_id: str, who: CurrentUser, c: ContainerDep, status: str | None = None
) -> list[DocumentOut]:
    """Documents of a readable collection, with status, stage, progress, ETA and timings."""
    c.access.check_read(who, collection_id)
    docs = c.documents.list_documents(collection_id=collection_id, status=status)
    jobs = c.documents.latest_jobs([d.id for d in docs])
    return [document_out(d, jobs.get(d.id)) for d in docs]


@docs_router.post(
    "/collections/{collection_id}/documents", response_model=list[UploadOut], status_code=202
)
async def upload_documents(
    collection_id: str,
    files: Annotated[
        list[UploadFile], File(description="One or more files (multipart).", min_length=1)
    ],
    request: Request,
    who: CurrentUser,
    c: ContainerDep,
) -> list[UploadOut]:
    """Upload files for ingestion (needs write access). Each is queued; files that are
    too large or empty are recorded as failed with the reason. Poll the document list
    for progress."""
    c.access.check_write(who, collection_id)
    limit = c.settings.server.max_files_per_upload
    if len(files) > limit:
        raise InvalidInput(f"at most {limit} files per upload")
    names = [upload_name(f.filename) for f in files]  # all refused before any is queued
    out: list[UploadOut] = []
    for f, name in zip(files, names, strict=True):
        data = bytearray()
        too_large = False
        while chunk := await f.read(READ_CHUNK):
            data += chunk
            if len(data) > c.max_file_bytes:
                too_large = True
                break
        if too_large:
            size = len(data) + sum([len(rest) async for rest in _drain(f)])
            result = c.documents.reject_too_large(
                collection_id=collection_id, name=name, size=size, uploader=who.email
            )
        else:
            result = c.documents.add(
                collection_id=collection_id, name=name, data=bytes(data), uploader=who.email
            )
        out.append(
            UploadOut(
                name=name,
                document_id=result.document_id,
                job_id=result.job_id,
                outcome=result.outcome,
                reason=result.reason,
            )
        )
        c.audit.record(
            "document.upload",
            who,
            target_type="document",
            target_id=result.document_id,
            ip=client_ip(request),
            details={"collection_id": collection_id, "name": name, "outcome": result.outcome},
        )
    c.wake_workers()
    return out


async def _drain(f: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await f.read(READ_CHUNK):
        yield chunk


def _readable_document(c: Container, who: Principal, document_id: str) -> Document:
    try:
        doc = c.documents.get(document_id)
        c.access.check_read(who, doc.collection_id)
    except NotFound:
        raise NotFound(f"no document {document_id}") from None
    return doc


@docs_router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(document_id: str, who: CurrentUser, c: ContainerDep) -> DocumentOut:
    """One document with its ingestion status."""
    doc = _readable_document(c, who, document_id)
    return document_out(doc, c.documents.latest_jobs([doc.id]).get(doc.id))


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
def document_file(document_id: str, who: CurrentUser, c: ContainerDep) -> Response:
    """The uploaded file itself, to open at a cited page (PDFs: add ``#page=N``)."""
    doc = _readable_document(c, who, document_id)
    if not c.blobs.exists(doc.sha256):
        raise NotFound(f"the file of {doc.name!r} is no longer stored")
    mime, disposition = _served_as(doc.mime)
    headers = {"Content-Disposition": f"{disposition}; {_filename_params(doc.name)}"}
    if mime != "application/pdf":
        # Even if a browser renders it, a stored file runs no script on this origin.
        headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return Response(c.blobs.get(doc.sha256), media_type=mime, headers=headers)


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
def delete_document(document_id: str, request: Request, who: CurrentUser, c: ContainerDep) -> None:
    """Delete a document: its text, chunks, vectors and stored file (needs write access)."""
    doc = _readable_document(c, who, document_id)
    c.access.check_write(who, doc.collection_id)
    c.documents.delete(document_id, vectors=c.vectors, lexical=c.lexical)
    c.audit.record(
        "document.delete",
        who,
        target_type="document",
        target_id=document_id,
        ip=client_ip(request),
        details={"collection_id": doc.collection_id, "name": doc.name},
    )


@docs_router.post("/documents/{document_id}/reindex", response_model=UploadOut, status_code=202)
def reindex_document(
    document_id: str, request: Request, who: CurrentUser, c: ContainerDep
) -> UploadOut:
    """Ingest the stored file again as a new version; the current one stays searchable
    until it is ready (needs write access)."""
    doc = _readable_document(c, who, document_id)
    c.access.check_write(who, doc.collection_id)
    result = c.documents.reprocess(document_id, uploader=who.email)
    c.wake_workers()
    c.audit.record(
        "document.reindex",
        who,
        target_type="document",
        target_id=document_id,
        ip=client_ip(request),
        details={"new_document_id": result.document_id},
    )
    return UploadOut(
        name=doc.name,
        document_id=result.document_id,
        job_id=result.job_id,
        outcome=result.outcome,
    )
