"""S3's XML documents: the answers the server writes and the requests it reads.

Written with :mod:`xml.etree.ElementTree` in S3's namespace; read with the same parser
(its expat refuses entity expansion bombs) with a size cap, namespace-agnostic, so both
SDKs that send ``xmlns`` and hand-written bodies that do not are understood.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from agents.s3.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML = 2 * 2**20
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def iso(ts: float) -> str:
    """S3's timestamps in XML: 2025-01-31T12:00:00.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def http_date(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts))


def _add(parent: ET.Element, tag: str, value: Any = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if value is not None:
        el.text = str(value).lower() if isinstance(value, bool) else str(value)
    return el


def _fill(parent: ET.Element, fields: Iterable[tuple[str, Any]]) -> None:
    for tag, value in fields:
        if isinstance(value, list):
            for item in value:
                _fill(_add(parent, tag), item)
        elif value is not None:
            _add(parent, tag, value)


def document(root: str, fields: Iterable[tuple[str, Any]]) -> bytes:
    """``<root xmlns=S3>`` with `fields`: (tag, text), (tag, [fields, ...]) for repeated
    elements with children; None values are left out."""
    el = ET.Element(root, xmlns=NS)
    _fill(el, fields)
    body: bytes = ET.tostring(el, encoding="utf-8", xml_declaration=False)
    return XML_HEAD + body


def error_document(err: S3Error, *, request_id: str) -> bytes:
    el = ET.Element("Error")
    for tag, value in (
        ("Code", err.code),
        ("Message", err.message),
        ("Resource", err.resource or None),
        ("RequestId", request_id),
    ):
        if value is not None:
            _add(el, tag, value)
    body: bytes = ET.tostring(el, encoding="utf-8")
    return XML_HEAD + body


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(data: bytes, root: str) -> ET.Element:
    """The request document, whose root element must be `root`.

    Raises:
        S3Error: MalformedXML.
    """
    if len(data) > MAX_XML:
        raise S3Error("MalformedXML", "The XML you provided was too large.")
    try:
        el = ET.fromstring(data)
    except ET.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed.") from None
    if _local(el.tag) != root:
        raise S3Error("MalformedXML", f"The XML you provided was not a {root} document.")
    return el


def children(el: ET.Element, tag: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == tag]


def text(el: ET.Element, tag: str) -> str | None:
    found = children(el, tag)
    return (found[0].text or "") if found else None
