"""Request and response bodies of the REST API (documented in the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything Lantern stores is UTC.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


# Character classes spelled out: regex engines disagree on what \s covers (U+0085...).
#: Control characters (C0, DEL, C1).
_CTRL = "\\x00-\\x1f\\x7f-\\x9f"
#: Everything Python counts as white space (str.split), plus controls and the BOM.
_BLANK = _CTRL + "\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
EMAIL = f"^[^@{_BLANK}]+@[^@{_BLANK}]+$"
#: A single-line name: no control characters, at least one visible character.
NAME = f"^[^{_CTRL}]*[^{_BLANK}][^{_CTRL}]*$"
#: Free text (a question): at least one visible character.
TEXT = f"[^{_BLANK}]"


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- identity ---------------------------------------------------------------------------


class LoginIn(BaseModel):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])


class UserOut(Model):
    id: str
    email: str
    name: str
    role: Literal["admin", "member"]
    is_active: bool
    created_at: Timestamp
    last_login_at: Timestamp | None = None


class MeOut(BaseModel):
    id: str
    email: str
    name: str
    role: Literal["admin", "member"]
    via: Literal["session", "api_key", "cli"]
    group_ids: list[str]


class UserIn(BaseModel):
    email: str = Field(max_length=320, pattern=EMAIL, examples=["grace@example.com"])
    name: str = Field(default="", max_length=200, examples=["Grace Hopper"])
    password: str | None = Field(
        default=None,
        min_length=10,
        max_length=1024,
        description="At least 10 characters; none for a user who only uses API keys.",
    )
    role: Literal["admin", "member"] = "member"


class UserPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    role: Literal["admin", "member"] | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME, examples=["engineering"])


class GroupOut(BaseModel):
    id: str
    name: str
    member_ids: list[str]


class MembersIn(BaseModel):
    user_ids: list[str] = Field(max_length=10_000)


class ApiKeyIn(BaseModel):
    name: str = Field(
        min_length=1, max_length=200, pattern=NAME, examples=["intranet search widget"]
    )
    user_id: str | None = Field(
        default=None, description="Admins only: create the key for this user."
    )


class ApiKeyOut(Model):
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None = None
    revoked_at: Timestamp | None = None


class NewApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    key: str = Field(description="The key itself. It is shown only this once.")


# -- collections and documents ----------------------------------------------------------


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME, examples=["HR policies"])
    description: str = Field(default="", max_length=2000)


class CollectionPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    description: str | None = Field(default=None, max_length=2000)


class GrantOut(BaseModel):
    group_id: str
    group_name: str
    access: Literal["read", "write"]


class CollectionOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: Timestamp
    documents: int
    access: Literal["read", "write"] = Field(description="What the caller may do with it.")


class GrantsIn(BaseModel):
    grants: dict[str, Literal["read", "write"]] = Field(
        description="Group id to access; replaces the collection's grants.",
        examples=[{"3f2a...": "read"}],
    )


class DocumentOut(BaseModel):
    id: str
    collection_id: str
    name: str
    mime: str
    size: int
    version: int
    status: Literal["queued", "processing", "ready", "failed"]
    error: str | None
    title: str | None
    page_count: int
    chunk_count: int
    created_at: Timestamp
    indexed_at: Timestamp | None
    job_id: str | None = None
    stage: str | None = Field(default=None, description="parse, chunk, embed, index, ...")
    progress: float = Field(default=0.0, description="0 to 1 within the current job.")
    eta_s: float | None = Field(default=None, description="Seconds left, estimated.")
    timings: dict[str, Any] = Field(default_factory=dict, description="Seconds per stage.")


class UploadOut(BaseModel):
    name: str
    document_id: str
    job_id: str | None
    outcome: Literal["queued", "new_version", "duplicate", "requeued", "rejected"]
    reason: str | None = None


# -- search and chat --------------------------------------------------------------------


class SearchIn(BaseModel):
    query: str = Field(
        min_length=1, max_length=4000, pattern=TEXT, examples=["vacation carry over"]
    )
    k: int = Field(default=8, ge=1, le=50)
    collection_ids: list[str] | None = Field(
        default=None, description="Search these (each must be readable); default: all readable."
    )


class SearchHitOut(BaseModel):
    chunk_id: str
    document_id: str
    document_name: str
    collection: str = Field(description="The collection's name.")
    title: str | None
    page: int | None
    text: str
    score: float


class ChatIn(BaseModel):
    title: str = Field(default="", max_length=200)
    collection_ids: list[str] = Field(
        default_factory=list, description="Collections to search; empty: all readable."
    )


class ChatPatch(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    collection_ids: list[str] | None = None


class ChatOut(Model):
    id: str
    title: str
    collection_ids: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    document_id: str
    title: str
    page: int | None
    quote: str = Field(description="Verbatim text of the source.")
    char_start: int
    char_end: int
    score: float
    exact: bool
    origin: Literal["chunk", "page"]


class MessageOut(Model):
    id: str
    seq: int
    role: Literal["user", "assistant"]
    content: str
    citations: list[CitationOut] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp


class AskIn(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=4000,
        pattern=TEXT,
        examples=["How many vacation days do I get?"],
    )
    stream: bool = Field(
        default=False,
        description="Answer as a server-sent event stream: token events, then one "
        "citations event, then a done event with ids and timings.",
    )


class AnswerOut(BaseModel):
    question_message_id: str
    message: MessageOut
    abstained: bool
    finish_reason: str
    notice: str | None


class FeedbackIn(BaseModel):
    rating: Literal[1, -1] = Field(description="1: thumbs up, -1: thumbs down.")
    comment: str = Field(default="", max_length=4000)


class FeedbackOut(Model):
    id: str
    message_id: str
    rating: int
    comment: str
    created_at: Timestamp


# -- audit and health -------------------------------------------------------------------


class AuditOut(Model):
    id: str
    at: Timestamp
    actor_id: str | None
    via: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    ip: str | None
    details: dict[str, Any]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    embedding_model: str
    embedding_fallback: bool
    chat_backend: str
    queue_depth: int
    warnings: list[str]


# -- errors -----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no collection 3f2a..."])


class ErrorOut(BaseModel):
    """Every error response has this body."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: Documented on every API route: the errors any of them can answer with.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The request cannot be carried out as given."),
    401: _error("Not logged in, or the API key is invalid or revoked."),
    403: _error("Logged in, but not allowed to do this."),
    404: _error("No such resource, or one the caller may not see."),
    409: _error("Conflicts with existing data (e.g. a name in use)."),
    413: _error("The request body is too large."),
    422: _error("The request body or parameters are invalid."),
    429: _error("Rate limit reached; see Retry-After."),
}
