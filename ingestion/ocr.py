"""OCR for pages that have no text layer: scans, photographs, slides of screenshots.

The engine is RapidOCR (``rapidocr-onnxruntime``, Apache-2.0): PaddleOCR's PP-OCRv4
detection and recognition models (Chinese and English in one recognizer) run on ONNX
Runtime, and ship inside the wheel, so OCR works with no network. It loads lazily,
once per process, on the first page that needs it.

Parsers get an ``Ocr`` (or None when OCR is off) and call ``Ocr.read(image)`` for
each page image; it returns the page's text as paragraphs, in reading order. The
caller that parses (``IngestionPipeline.parse``) can watch progress and time through
``watching``: OCR is the slow stage (about a second a page on two cores), so it has a
stage of its own in the job's progress and in the document's timings.
"""

from __future__ import annotations

import contextvars
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ingestion.errors import EmptyDocument

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

#: The longest side a page image is rendered or scaled to before OCR. RapidOCR scales
#: anything larger down to 2,000 px itself; rendering larger only costs time.
MAX_SIDE_PX = 2000
#: Lines recognised with less confidence than this are dropped (RapidOCR's default).
MIN_SCORE = 0.5
#: A line break wider than this many line heights starts a new paragraph.
_PARAGRAPH_GAP = 0.9
#: Two boxes whose vertical centres are closer than this share of a line height are on
#: one line.
_SAME_LINE = 0.5

OFF_HINT = "OCR is turned off (set LANTERN_INGESTION__OCR=true to read scans and pictures)"


@dataclass(frozen=True)
class OcrBox:
    """One recognised line segment; coordinates in pixels of the image read."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    score: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


class OcrEngine(Protocol):
    """Recognises the text of one image."""

    name: str

    def recognize(self, image: Image) -> list[OcrBox]: ...


class RapidOcrEngine:
    """RapidOCR on ONNX Runtime with the PP-OCRv4 models its wheel ships."""

    name = "rapidocr"

    def __init__(self, *, min_score: float = MIN_SCORE) -> None:
        self.min_score = min_score
        self._engine: Any = None
        # One page at a time per process: ONNX Runtime already uses every core for one
        # image, and RapidOCR's objects keep per-call state.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as e:
                raise OcrUnavailable(unavailable_reason(e)) from e
            started = time.perf_counter()
            self._engine = RapidOCR(text_score=self.min_score, print_verbose=False)
            logger.info("loaded RapidOCR in %.1fs", time.perf_counter() - started)
        return self._engine

    def recognize(self, image: Image) -> list[OcrBox]:
        """RapidOCR's own steps (detect, crop, orient, recognise), except that a long
        line is recognised in pieces cut at word gaps (``split_line``): PP-OCRv4's
        recogniser reads up to ~25 times a line's height, and a full-width line of a
        scanned A4 page (~40 times) came back as two letters. Orientation is decided
        for the page, not per line."""
        import numpy as np

        with self._lock:
            engine = self._load()
            page = engine.load_img(np.asarray(image.convert("RGB")))[:, :, ::-1].copy()
            for attempt in range(2):
                raw_h, raw_w = page.shape[:2]
                img, ratio_h, ratio_w = engine.preprocess(page)
                record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
                img, record = engine.maybe_add_letterbox(img, record)
                found = _detect(engine, img)
                if found is None:
                    return []
                crops = engine.get_crop_img_list(img, found)
                split = [split_line(crop) for crop in crops]
                pieces = [piece for line in split for piece, _ in line]
                # RapidOCR turns each line the classifier calls upside down; on Latin
                # text it called a third of a page's pieces so, at random. A page is
                # turned as a whole instead, when most of its text is upside down.
                _, verdicts, _ = engine.text_cls(pieces)
                upside = sum(1 for label, _ in verdicts if label == "180")
                if attempt or len(pieces) < 3 or upside <= _UPSIDE_DOWN * len(pieces):
                    break
                page = np.ascontiguousarray(page[::-1, ::-1])
            recognised, _ = engine.text_rec(pieces, True)
            points = engine._get_origin_points(found, record, raw_h, raw_w)
        texts: list[str] = []
        scores: list[list[float]] = []
        at = 0
        for parts in split:
            joints = [joint for _, joint in parts]
            line = range(at, at + len(parts))
            at += len(parts)
            text = _join_pieces([recognised[i][0] for i in line], joints)
            if _spaces_lost(text):
                # PP-OCRv4 reads small or blurred English without its spaces
                # ("Visitorscollect theirbadgesat"): the image's word gaps give them back.
                text = _join_pieces([respace(pieces[i], recognised[i]) for i in line], joints)
            texts.append(text)
            scores.append([float(recognised[i][1]) for i in line if recognised[i][0].strip()])
        boxes = []
        for quad, text, line_scores in zip(points, texts, scores, strict=True):
            score = min(line_scores, default=0.0)
            if text.strip() and score >= self.min_score:
                xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
                boxes.append(OcrBox(text.strip(), min(xs), min(ys), max(xs), max(ys), score))
        return boxes


def _spaces_lost(text: str) -> bool:
    """A line of Latin letters with words longer than real ones: its spaces lost."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 12 or sum(c.isascii() for c in letters) < 0.9 * len(letters):
        return False
    words = text.split()
    return max(len(w) for w in words) > 13 or len(letters) / len(words) > 8


#: A blank gap at least this share of a line's height is a word gap (letters sit about
#: 0.05 heights apart, words 0.2 and more).
_WORD_GAP = 0.15


def _join_pieces(texts: list[str], joints: list[str]) -> str:
    """A line's pieces' texts, each joined to the text before it by its joint."""
    text = ""
    for piece, joint in zip(texts, joints, strict=True):
        text = f"{text}{joint if text else ''}{piece}"
    return text


def _blank_columns(crop: Any) -> Any:
    """For each pixel column of a line image: True where no ink (darker than half-way
    between the image's darkest and lightest) falls in it."""
    gray = crop.mean(axis=2)
    return (gray < (float(gray.min()) + float(gray.max())) / 2).sum(axis=0) == 0


def respace(piece: Any, result: Any) -> str:
    """The recognised text of a line image with a space put back wherever two letters
    the recogniser wrote together stand apart by a word gap in the image. The letters'
    positions come from the CTC decoder (``return_word_box``): column ``c`` of ``cols``
    covers ``width / cols`` pixels of the piece."""
    text, _, (cols, words, positions, _, _) = result
    chars = [c for word in words for c in word]
    at = [p for word in positions for p in word]
    if not chars or len(chars) != len(at) or cols <= 0:
        return str(text)
    height, width = piece.shape[:2]
    blank = _blank_columns(piece)
    px = width / cols
    out = [chars[0]]
    for k in range(1, len(chars)):
        left, right = chars[k - 1], chars[k]
        if not left.isspace() and not right.isspace() and left.isascii() and right.isascii():
            _, gap = _widest_gap(blank, round((at[k - 1] + 0.5) * px), round((at[k] + 0.5) * px))
            if gap >= _WORD_GAP * height:
                out.append(" ")
        out.append(right)
    return "".join(out)


#: A page is turned over when more than this share of its text pieces are upside down.
_UPSIDE_DOWN = 0.6

#: Text is found on the page image scaled to at most this many pixels a side (about
#: 130 dpi for A4: body text stays ~20 px high, plenty for the detector, at a third of
#: the cost) and read from the full image.
DET_MAX_SIDE = 1280


def _detect(engine: Any, img: Any) -> Any:
    """RapidOCR's text boxes for ``img``, found on a smaller copy of it."""
    import cv2

    height, width = img.shape[:2]
    scale = min(1.0, DET_MAX_SIDE / max(height, width))
    if scale >= 1.0:
        return engine.auto_text_det(img)[0]
    size = (round(width * scale), round(height * scale))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    found = engine.auto_text_det(small)[0]
    return None if found is None else [box / scale for box in found]


#: A line crop wider than this many times its height is recognised in pieces ...
_MAX_LINE_RATIO = 20
#: ... of about this many heights, cut in the widest blank gap between these bounds.
_PIECE_RATIO = (8, 16)


def split_line(crop: Any) -> list[tuple[Any, str]]:
    """A line image (``h x w x 3``) as pieces no longer than ``_MAX_LINE_RATIO`` heights,
    each with the text that joins it to the one before (" " after a word space)."""
    import numpy as np

    height, width = crop.shape[:2]
    if width <= _MAX_LINE_RATIO * height:
        return [(crop, "")]
    blank = _blank_columns(crop)
    pieces: list[tuple[Any, str]] = []
    start, joint = 0, ""
    while width - start > _MAX_LINE_RATIO * height:
        lo, hi = start + _PIECE_RATIO[0] * height, start + _PIECE_RATIO[1] * height
        cut, run = _widest_gap(blank, lo, hi)
        if run == 0:
            cut = start + (lo + hi - 2 * start) // 2
        pieces.append((crop[:, start:cut], joint))
        joint = " " if run >= _WORD_GAP * height else ""
        start = cut
    pieces.append((crop[:, start:], joint))
    return [(np.ascontiguousarray(p), j) for p, j in pieces if p.shape[1] > 0]


def _widest_gap(blank: Any, lo: int, hi: int) -> tuple[int, int]:
    """The middle and length of the longest run of blank columns in ``[lo, hi)``."""
    best_at, best_len, run_start = lo, 0, None
    for x in range(max(int(lo), 0), int(min(hi, len(blank)))):
        if blank[x]:
            run_start = x if run_start is None else run_start
            if x - run_start + 1 > best_len:
                best_len, best_at = x - run_start + 1, (run_start + x + 1) // 2
        else:
            run_start = None
    return best_at, best_len


class OcrUnavailable(EmptyDocument):
    """OCR is needed but its engine cannot run here (not installed, a system library missing)."""


def unavailable_reason(error: ImportError) -> str:
    """Why the OCR engine could not be imported, with what to do about it."""
    text = str(error)
    if "libGL" in text or "libgthread" in text or "libglib" in text:
        return (
            f"OCR is unavailable: OpenCV cannot load a system library ({text}); "
            "install it (Debian/Ubuntu: apt-get install libgl1 libglib2.0-0)"
        )
    return (
        f"OCR is unavailable: {text}; install Lantern's OCR extra: pip install "
        "'lantern[ocr]' (rapidocr-onnxruntime, on Python 3.12 or older)"
    )


def ocr_available() -> str | None:
    """None when the OCR engine can be imported here, else the reason it cannot."""
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError as e:
        return unavailable_reason(e)
    return None


# ---------------------------------------------------------------- progress and time


@dataclass
class OcrWatch:
    """What the parse in progress has spent on OCR; ``on_page(done, total, pages)`` is
    told after each page image (``total`` images to read, of ``pages`` pages)."""

    on_page: Callable[[int, int, int], None] | None = None
    seconds: float = 0.0
    images: int = 0


_WATCH: contextvars.ContextVar[OcrWatch | None] = contextvars.ContextVar("ocr_watch", default=None)


@contextmanager
def watching(on_page: Callable[[int, int, int], None] | None = None) -> Iterator[OcrWatch]:
    """Collect the OCR time (and report the pages) of the parsing done inside."""
    watch = OcrWatch(on_page)
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


class Ocr:
    """The OCR step the parsers share: an engine and how to lay its lines out as text."""

    def __init__(self, engine: OcrEngine) -> None:
        self.engine = engine

    def read(self, image: Image, *, done: int = 0, total: int = 1, pages: int = 1) -> list[str]:
        """The paragraphs of ``image`` in reading order (none for a blank image).

        ``done``/``total``/``pages`` say where this image is in the document's OCR
        work (this is image ``done + 1`` of ``total``, in a document of ``pages``
        pages), for the progress report."""
        started = time.perf_counter()
        boxes = self.engine.recognize(fit(image))
        watch = _WATCH.get()
        if watch is not None:
            watch.seconds += time.perf_counter() - started
            watch.images += 1
            if watch.on_page is not None:
                watch.on_page(done + 1, total, pages)
        return paragraphs(boxes)


#: Pictures smaller than this (icons, bullets, logos' corners) are not read.
MIN_PICTURE_PX = 32


def picture(blob: bytes) -> Image | None:
    """An embedded picture (a DOCX/PPTX image part) as an image to read, or None when
    it is too small to hold text or not a raster format Pillow reads (EMF, WMF, SVG)."""
    import io
    import warnings

    from PIL import Image as PILImage

    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            image = PILImage.open(io.BytesIO(blob))
            image.load()
        except Exception as e:  # any undecodable picture is skipped, never fatal
            logger.info("skipping a picture OCR cannot read: %s", e)
            return None
    if min(image.size) < MIN_PICTURE_PX:
        return None
    return image


def read_pictures(
    ocr: Ocr, builder: Any, blobs: list[bytes], *, done: int, total: int, pages: int = 1
) -> int:
    """Add the text OCR reads in these embedded pictures to ``builder``'s current page,
    each paragraph a text block; return ``done`` plus the pictures read."""
    for blob in blobs:
        image = picture(blob)
        if image is not None:
            for paragraph in ocr.read(image, done=done, total=total, pages=pages):
                builder.add("text", paragraph)
        done += 1
    return done


def no_text_reason(*, pictures: int, ocr: Ocr | None, off_reason: str, what: str) -> str:
    """Why a document of ``what`` (pictures, images) came out without text."""
    if pictures:
        return f"OCR found no text in its {what}"
    if ocr is None:
        return f"only {what}?; {off_reason}"
    return f"and no {what} with text"


def fit(image: Image) -> Image:
    """``image`` scaled down so that its longest side is at most ``MAX_SIDE_PX``."""
    longest = max(image.size)
    if longest <= MAX_SIDE_PX:
        return image
    scale = MAX_SIDE_PX / longest
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def render_scale(width_pt: float, height_pt: float, *, dpi: int) -> float:
    """The pdfium render scale for a page of this size (in points): ``dpi``, but no
    larger than OCR reads."""
    longest = max(width_pt, height_pt, 1.0)
    return min(dpi / 72, MAX_SIDE_PX / longest)


# ---------------------------------------------------------------- layout


def paragraphs(boxes: list[OcrBox]) -> list[str]:
    """Line segments grouped into lines (left to right) and lines into paragraphs.

    A page in two columns is read column by column when a vertical gutter runs
    between them (``_columns``); otherwise top to bottom."""
    out: list[str] = []
    for column in _columns(boxes):
        out.extend(_column_paragraphs(column))
    return out


def _column_paragraphs(boxes: list[OcrBox]) -> list[str]:
    lines = _lines(boxes)
    if not lines:
        return []
    heights = [max(b.height for b in line) for line in lines]
    usual = statistics.median(heights)
    out: list[list[str]] = [[]]
    previous: list[OcrBox] | None = None
    for line in lines:
        if previous is not None:
            gap = min(b.top for b in line) - max(b.bottom for b in previous)
            if gap > _PARAGRAPH_GAP * usual:
                out.append([])
        out[-1].append(" ".join(b.text for b in line))
        previous = line
    return [_join_lines(p) for p in out if p]


def _join_lines(lines: list[str]) -> str:
    """Lines of one paragraph: a word broken at a line end by a hyphen is joined."""
    text = lines[0]
    for line in lines[1:]:
        if len(text) > 1 and text.endswith("-") and text[-2].isalpha() and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text}\n{line}"
    return text


def _lines(boxes: list[OcrBox]) -> list[list[OcrBox]]:
    lines: list[list[OcrBox]] = []
    for box in sorted(boxes, key=lambda b: (b.middle, b.left)):
        if lines:
            last = lines[-1]
            anchor = statistics.median(b.middle for b in last)
            if abs(box.middle - anchor) < _SAME_LINE * max(box.height, last[0].height):
                last.append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b.left) for line in lines]


def _columns(boxes: list[OcrBox]) -> list[list[OcrBox]]:
    """Boxes split at a vertical gutter in the middle of the page, if there is one:
    boxes wholly above the columns first (a title across both), then the left column,
    then the right one, then anything below. Without a gutter: one column."""
    if len(boxes) < 6:
        return [boxes]
    left = min(b.left for b in boxes)
    right = max(b.right for b in boxes)
    width = right - left
    lo, hi = left + 0.3 * width, left + 0.7 * width
    # Candidate gutter positions: where no line crosses, between the page's thirds.
    edges = sorted({b.right for b in boxes if lo <= b.right <= hi})
    best: tuple[float, float] | None = None
    for edge in edges:
        starts = [b.left for b in boxes if b.left > edge]
        if not starts:
            continue
        gap_end = min(starts)
        crossing = [b for b in boxes if b.left < edge < b.right or b.left < gap_end < b.right]
        wide = gap_end - edge > 0.02 * width and len(crossing) <= 0.1 * len(boxes)
        if wide and (best is None or gap_end - edge > best[1] - best[0]):
            best = (edge, gap_end)
    if best is None:
        return [boxes]
    edge, gap_end = best
    spanning = [b for b in boxes if b.left < edge and b.right > gap_end]
    first = [b for b in boxes if b.right <= edge]
    second = [b for b in boxes if b.left >= gap_end]
    if len(first) < 3 or len(second) < 3:
        return [boxes]
    # Columns of text are wide; short segments side by side are a form or a table
    # ("Total:  $120"), read row by row.
    for column in (first, second):
        if statistics.median(b.right - b.left for b in column) < 0.25 * width:
            return [boxes]
    top = min(b.top for b in first + second)
    above = [b for b in spanning if b.bottom <= top]
    below = [b for b in spanning if b.bottom > top]
    return [part for part in (above, first, second, below) if part]
