"""Where source files come from: each source yields :class:`SourceFile` records in a
fixed order, and the filter chain (``stages.lib.filters``) decides which are kept.

Two kinds, one interface:
- ``installed`` (smoke): files of pinned distributions installed with the project;
- ``hub`` (paper): a Hugging Face dataset streamed at a pinned revision, with the
  file contents hydrated from Software Heritage's S3 bucket for The Stack v2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceFile:
    """One candidate file, before any filter.

    ``license_fields`` keeps the record's licence columns in the original's priority
    order (field name -> raw value), so the filter can reproduce both the original
    first-non-empty-field rule and the corrected one.
    """

    record_index: int  # 1-based position among the records the source yielded
    repo_name: str
    path: str  # path of the file inside its repository
    data: bytes | None  # raw bytes; None when the content could not be fetched
    license_fields: dict[str, object] = field(default_factory=dict)
    stars: int | None = None
    is_generated: bool | None = None
    encoding: str = "utf-8"
    fetch_error: str | None = None  # why ``data`` is None
    source: str = ""  # e.g. "installed:transformers==5.17.0" or "hub:bigcode/the-stack-v2-dedup"
    revision: str = ""  # the pinned revision (dataset commit or distribution version)
