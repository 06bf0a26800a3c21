"""Typed attribute values: the one place where a request's values get their syntax, count,
range and length checked (RFC 8011 section 5.1), before anything reads, stores or echoes them.

Every reader here takes an `Attribute` as the codec decoded it (any tag, any number of values,
any Python value) and either returns a plain Python value that is safe to store and to encode
again, or raises `BadValue` with a short reason. Nothing else escapes: not a `struct.error`, not
the `ValueError` of `urlsplit`, not an `int()` of a Unicode digit. Callers turn `BadValue` into
the IPP status that fits where the attribute was sent (see `operations.Call.value` and
`job_template.check_template`).
"""

from __future__ import annotations

import re
from collections.abc import Collection as Container
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ippwire.enums import ValueTag
from ippwire.model import Attribute, Collection, IntRange, Resolution, StringWithLanguage, Value

T = ValueTag

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_NAME = 255  # octets: name(MAX), RFC 8011 5.1.3
MAX_TEXT = 1023  # octets: text(MAX), RFC 8011 5.1.2
MAX_KEYWORD = 255
MAX_URI = 1023
MAX_MIME_TYPE = 255
MAX_LANGUAGE = 63
MAX_CHARSET = 63

NAME_TAGS = (T.NAME, T.NAME_WITH_LANGUAGE)
TEXT_TAGS = (T.TEXT, T.TEXT_WITH_LANGUAGE)
IPP_SCHEMES = ("ipp", "ipps", "http", "https")

# RFC 8011 5.1.4 says lowercase; vendors use capitals, which cost nothing to accept.
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")  # RFC 5646, structurally
_CHARSET = re.compile(r"[A-Za-z0-9!#$%&'+^_`{}~.-]+")  # RFC 2978 mime-charset
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?")
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, LF, CR allowed
_URI_FORBIDDEN = re.compile(r"[^!-~]")  # controls, space and non-ASCII


class BadValue(ValueError):
    """The values of an attribute do not have the syntax, count, range or length it needs."""


# -- plain values -------------------------------------------------------------------------


def integer(tag: int, value: Value, low: int = INT32_MIN, high: int = INT32_MAX,
            tags: Container[int] = (T.INTEGER,)) -> int:
    """One integer value (never a bool, which Python counts as an int) in [low, high]."""
    if tag not in tags or type(value) is not int:
        raise BadValue(f"expected an integer, got {_describe(tag, value)}")
    if not max(low, INT32_MIN) <= value <= min(high, INT32_MAX):
        raise BadValue(f"{value} is outside {low}..{high}")
    return value


def keyword(tag: int, value: Value, allowed: Container[str] | None = None, *,
            names: bool = False) -> str:
    """A keyword (or, with `names`, a name where the attribute is 'keyword | name')."""
    if names and tag in NAME_TAGS:
        text = name(tag, value)
        if not text:
            raise BadValue("empty name")
    elif tag != T.KEYWORD or not isinstance(value, str):
        raise BadValue(f"expected a keyword, got {_describe(tag, value)}")
    else:
        text = value
        if len(text) > MAX_KEYWORD or not _KEYWORD.fullmatch(text):
            raise BadValue(f"{_clip(text)!r} is not a keyword")
    if allowed is not None and text not in allowed:
        raise BadValue(f"{_clip(text)!r} is not supported")
    return text


def name(tag: int, value: Value, max_octets: int = MAX_NAME, *, texts: bool = False) -> str:
    """A name or nameWithLanguage (or, with `texts`, also a text, as clients send job-name):
    valid Unicode, no control characters, capped in octets."""
    if tag not in NAME_TAGS and not (texts and tag in TEXT_TAGS):
        raise BadValue(f"expected a name, got {_describe(tag, value)}")
    return _string(value, max_octets, _NAME_FORBIDDEN)


def text(tag: int, value: Value, max_octets: int = MAX_TEXT, *, names: bool = False) -> str:
    """A text or textWithLanguage (or, with `names`, also a name): capped in octets."""
    if tag not in TEXT_TAGS and not (names and tag in NAME_TAGS):
        raise BadValue(f"expected a text, got {_describe(tag, value)}")
    return _string(value, max_octets, _TEXT_FORBIDDEN)


def _string(value: Value, max_octets: int, forbidden: re.Pattern[str]) -> str:
    if isinstance(value, StringWithLanguage):
        if not natural_language_syntax(value.language):
            raise BadValue(f"{_clip(value.language)!r} is not a natural language")
        value = value.text
    if not isinstance(value, str):
        raise BadValue(f"expected a string, got {type(value).__name__}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue("not valid Unicode (a lone surrogate)") from None
    if forbidden.search(value):
        raise BadValue("contains control characters")
    if len(encoded) > max_octets:
        # Capped, not refused: a long file name is an everyday job-name.
        return encoded[:max_octets].decode("utf-8", "ignore")
    return value


def natural_language_syntax(value: str) -> bool:
    return len(value) <= MAX_LANGUAGE and _LANGUAGE.fullmatch(value) is not None


def boolean(tag: int, value: Value) -> bool:
    if tag != T.BOOLEAN or type(value) is not bool:
        raise BadValue(f"expected a boolean, got {_describe(tag, value)}")
    return value


def enum(tag: int, value: Value, allowed: Container[int] | None = None) -> int:
    number = integer(tag, value, 1, INT32_MAX, tags=(T.ENUM,))
    if allowed is not None and number not in allowed:
        raise BadValue(f"enum {number} is not supported")
    return number


def range_of_integer(tag: int, value: Value, low: int = INT32_MIN,
                     high: int = INT32_MAX) -> tuple[int, int]:
    if tag != T.RANGE_OF_INTEGER or not isinstance(value, IntRange):
        raise BadValue(f"expected a rangeOfInteger, got {_describe(tag, value)}")
    lower = integer(T.INTEGER, value.lower, low, high)
    upper = integer(T.INTEGER, value.upper, low, high)
    if upper < lower:
        raise BadValue(f"range {lower}-{upper} is empty")
    return lower, upper


def resolution(tag: int, value: Value) -> Resolution:
    if tag != T.RESOLUTION or not isinstance(value, Resolution):
        raise BadValue(f"expected a resolution, got {_describe(tag, value)}")
    if value.units not in (3, 4):
        raise BadValue(f"resolution units {value.units!r} are neither dpi nor dpcm")
    integer(T.INTEGER, value.x, 1)
    integer(T.INTEGER, value.y, 1)
    return value


def collection(tag: int, value: Value) -> Collection:
    if tag != T.BEGIN_COLLECTION or not isinstance(value, Collection):
        raise BadValue(f"expected a collection, got {_describe(tag, value)}")
    return value


def mime_type(tag: int, value: Value) -> str:
    """A mimeMediaType, lower-cased (types and subtypes are case-insensitive)."""
    if tag != T.MIME_MEDIA_TYPE or not isinstance(value, str):
        raise BadValue(f"expected a mimeMediaType, got {_describe(tag, value)}")
    if len(value) > MAX_MIME_TYPE or not _MIME_TYPE.fullmatch(value):
        raise BadValue(f"{_clip(value)!r} is not a MIME media type")
    return value.lower()


def natural_language(tag: int, value: Value) -> str:
    if tag != T.NATURAL_LANGUAGE or not isinstance(value, str):
        raise BadValue(f"expected a naturalLanguage, got {_describe(tag, value)}")
    if not natural_language_syntax(value):
        raise BadValue(f"{_clip(value)!r} is not a natural language")
    return value


def charset(tag: int, value: Value) -> str:
    """A charset, lower-cased."""
    if tag != T.CHARSET or not isinstance(value, str):
        raise BadValue(f"expected a charset, got {_describe(tag, value)}")
    if len(value) > MAX_CHARSET or not _CHARSET.fullmatch(value):
        raise BadValue(f"{_clip(value)!r} is not a charset")
    return value.lower()


@dataclass(frozen=True)
class Uri:
    scheme: str
    host: str
    port: int | None
    path: str  # percent-decoded


def uri(tag: int, value: Value, schemes: Container[str] = IPP_SCHEMES) -> Uri:
    """A uri, parsed: never the ValueError of urlsplit (an unclosed IPv6 bracket) or of
    `.port` (not a number, out of range)."""
    if tag != T.URI or not isinstance(value, str):
        raise BadValue(f"expected a uri, got {_describe(tag, value)}")
    if not value or len(value) > MAX_URI or _URI_FORBIDDEN.search(value):
        raise BadValue(f"{_clip(value)!r} is not a URI")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise BadValue(f"{_clip(value)!r} is not a URI ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise BadValue(f"{_clip(value)!r} is not an {'/'.join(sorted(schemes))} URI")
    return Uri(scheme, parts.hostname or "", port, unquote(parts.path))


def ascii_number(digits: str, low: int = 1, high: int = INT32_MAX) -> int:
    """A decimal number as IPP writes one: ASCII digits only ('²'.isdigit() is true, and
    int('٣') is 3), within [low, high]."""
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        raise BadValue(f"{_clip(digits)!r} is not a number")
    return integer(T.INTEGER, int(digits), low, high)


# -- one attribute ------------------------------------------------------------------------


def single(attr: Attribute) -> tuple[int, Value]:
    """The one (tag, value) of an attribute that takes one, not out-of-band."""
    if len(attr.values) != 1:
        raise BadValue(f"{len(attr.values)} values where one is expected")
    tag, value = attr.values[0]
    if 0x10 <= tag <= 0x1F:
        raise BadValue(f"out-of-band value (tag 0x{tag:02x}) where a value is expected")
    return tag, value


def single_out_of_band(attr: Attribute) -> int | None:
    """The tag of the one out-of-band value `attr` holds ('default' stands for the printer's
    default), None when it holds anything else."""
    if len(attr.values) != 1:
        return None
    tag = attr.values[0][0]
    return tag if 0x10 <= tag <= 0x1F else None


def single_integer(attr: Attribute, low: int = INT32_MIN, high: int = INT32_MAX) -> int:
    return integer(*single(attr), low, high)


def single_enum(attr: Attribute, allowed: Container[int] | None = None) -> int:
    return enum(*single(attr), allowed)


def single_boolean(attr: Attribute) -> bool:
    return boolean(*single(attr))


def single_keyword(attr: Attribute, allowed: Container[str] | None = None, *,
                   names: bool = False) -> str:
    return keyword(*single(attr), allowed, names=names)


def single_name(attr: Attribute, max_octets: int = MAX_NAME, *, texts: bool = False) -> str:
    return name(*single(attr), max_octets, texts=texts)


def single_text(attr: Attribute, max_octets: int = MAX_TEXT, *, names: bool = False) -> str:
    return text(*single(attr), max_octets, names=names)


def single_mime_type(attr: Attribute) -> str:
    return mime_type(*single(attr))


def single_natural_language(attr: Attribute) -> str:
    return natural_language(*single(attr))


def single_charset(attr: Attribute) -> str:
    return charset(*single(attr))


def single_uri(attr: Attribute, schemes: Container[str] = IPP_SCHEMES) -> Uri:
    return uri(*single(attr), schemes)


def single_resolution(attr: Attribute) -> Resolution:
    return resolution(*single(attr))


def single_collection(attr: Attribute) -> Collection:
    return collection(*single(attr))


def integers(attr: Attribute, low: int = INT32_MIN, high: int = INT32_MAX) -> list[int]:
    """A 1setOf integer."""
    return [integer(tag, value, low, high) for tag, value in attr.values]


def keywords(attr: Attribute, allowed: Container[str] | None = None) -> list[str]:
    """A 1setOf keyword."""
    return [keyword(tag, value, allowed) for tag, value in attr.values]


def enums(attr: Attribute, allowed: Container[int] | None = None) -> list[int]:
    return [enum(tag, value, allowed) for tag, value in attr.values]


def collections(attr: Attribute) -> list[Collection]:
    """A 1setOf collection."""
    return [collection(tag, value) for tag, value in attr.values]


def ranges(attr: Attribute, low: int = INT32_MIN,
           high: int = INT32_MAX) -> list[tuple[int, int]]:
    """A 1setOf rangeOfInteger."""
    return [range_of_integer(tag, value, low, high) for tag, value in attr.values]


# -- messages -----------------------------------------------------------------------------


def _describe(tag: int, value: Value) -> str:
    try:
        syntax = ValueTag(tag).name.lower().replace("_", "-")
    except ValueError:
        syntax = f"tag 0x{tag:02x}"
    if tag < 0x20:
        return syntax
    if isinstance(value, Collection):
        return f"{syntax} of {len(value)} members"
    return f"{syntax} {_clip(repr(value))}"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
