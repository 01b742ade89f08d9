"""Image files (PNG, JPEG, TIFF, BMP, GIF, WebP) read by OCR, one page per frame: a
multi-page TIFF (a fax, a scanner's output) keeps its page numbers."""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ingestion.detect import IMAGE_MIMES, image_mime
from ingestion.errors import EmptyDocument, FileTooLarge, ParseError
from ingestion.ocr import OFF_HINT, Ocr
from ingestion.parsers._blocks import DocumentBuilder
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

#: Pixels per frame before an image is refused as a decompression bomb (Pillow warns
#: at ~89 M and refuses at twice that; a 600 dpi A3 scan is ~70 M).
MAX_PIXELS = 120_000_000
#: Frames read from one file (a multi-page TIFF or an animated GIF).
MAX_FRAMES = 2000


class ImageParser:
    """Reads the text in an image with OCR; ``ocr=None`` (OCR off) refuses clearly."""

    mime_types: tuple[str, ...] = IMAGE_MIMES

    def __init__(self, ocr: Ocr | None, *, off_reason: str = OFF_HINT) -> None:
        self.ocr = ocr
        self.off_reason = off_reason

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        if self.ocr is None:
            raise EmptyDocument(
                f"{filename} is an image, whose text only OCR can read; {self.off_reason}"
            )
        frames = _frames(data, filename)
        builder = DocumentBuilder()
        for number, frame in enumerate(frames):
            if number:
                builder.next_page()
            builder.mark_ocr()
            for paragraph in self.ocr.read(
                frame, done=number, total=len(frames), pages=len(frames)
            ):
                builder.add("text", paragraph)
        if not builder.has_text:
            count = f"{len(frames)} page{'s' if len(frames) != 1 else ''}"
            raise EmptyDocument(f"{filename}: OCR found no text in the image ({count})")
        return builder.build(mime=_mime(data), paginated=len(frames) > 1)


def _frames(data: bytes, filename: str) -> list[Image.Image]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            frames = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= MAX_FRAMES:
                    logger.warning("%s: reading its first %d frames only", filename, MAX_FRAMES)
                    break
                if frame.width * frame.height > MAX_PIXELS:
                    raise FileTooLarge(
                        f"{filename}: an image of {frame.width}x{frame.height} pixels is "
                        f"larger than the {MAX_PIXELS // 1_000_000} million pixels OCR reads"
                    )
                # Camera photos are stored sideways with an EXIF orientation tag.
                frames.append(ImageOps.exif_transpose(frame.convert("RGB")))
                if getattr(image, "is_animated", False) and image.format == "GIF":
                    break  # an animated GIF: its first frame
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise FileTooLarge(f"{filename}: the image is too large to read: {e}") from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise ParseError(f"{filename} is not a valid image file: {e}") from e
    if not frames:
        raise ParseError(f"{filename} is not a valid image file: it has no frames")
    return frames


def _mime(data: bytes) -> str:
    return image_mime(data) or IMAGE_MIMES[0]
