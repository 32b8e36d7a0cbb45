"""Provenance: C2PA Content Credentials, embedded metadata, and a short human summary of both.

Everything here reads local files only. C2PA is read with remote-manifest and OCSP fetching turned off, and no
trust list is configured, so the best state a manifest can reach is "Valid" (signature and hashes check), never
"Trusted"; the summary says so instead of implying the signer is vouched for. Metadata (EXIF, XMP, container tags)
is unsigned and trivially edited: it is reported as a hint, never as proof.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, TypedDict, Union

PathLike = Union[str, Path]

# c2pa-rs settings for offline reading. Unknown keys are silently accepted by c2pa-rs, so these names were
# checked against the 0.38.1 binding / c2pa-rs 0.91 library (strings in libc2pa_c.so and its Settings type).
OFFLINE_C2PA_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}

IPTC_SOURCE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# IPTC Digital Source Type vocabulary, most telling (synthetic) first: the order picks the headline type when a
# manifest store declares several.
DIGITAL_SOURCE_TYPES: dict[str, str] = {
    "trainedAlgorithmicMedia": "Trained algorithmic media (generative AI)",
    "compositeWithTrainedAlgorithmicMedia": "Composite including generative AI elements",
    "algorithmicMedia": "Algorithmic media (generated purely by an algorithm, no trained model)",
    "compositeSynthetic": "Composite including synthetic elements",
    "dataDrivenMedia": "Data-driven media",
    "digitalArt": "Digital art (made by a person with software)",
    "digitalCreation": "Digital creation (made by a person with software)",
    "virtualRecording": "Virtual recording (e.g. of a virtual environment)",
    "algorithmicallyEnhanced": "Algorithmically enhanced",
    "composite": "Composite",
    "compositeCapture": "Composite of captured elements",
    "screenCapture": "Screen capture",
    "humanEdits": "Human edits",
    "minorHumanEdits": "Minor human edits",
    "computationalCapture": "Computational capture (e.g. a phone's multi-frame processing)",
    "digitalCapture": "Digital capture (recorded by a camera or microphone)",
    "negativeFilm": "Digitised from a film negative",
    "positiveFilm": "Digitised from positive film (slide)",
    "print": "Digitised from a print",
}
_SYNTHETIC_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia",
                    "compositeSynthetic"}
_GENERATIVE_AI_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
# Failure codes that only mean "no trust list says who this signer is": reported via validation_state/summary.
_TRUST_ONLY_CODES = {"signingCredential.untrusted"}
_MAX_VALUE_CHARS = 200
_JUMBF_SCAN_CHUNK = 1024 * 1024
# JUMBF description box of a C2PA store/manifest/assertion store/claim/signature: ASCII type + ISO UUID suffix
_C2PA_JUMD = re.compile(rb"jumd(?:c2pa|c2ma|c2um|c2as|c2cl|c2cs)\x00\x11\x00\x10\x80\x00\x00\xaa\x00\x38\x9b\x71")
_BINARY_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


class C2paAction(TypedDict):
    action: str
    digital_source_type: Optional[str]
    software_agent: Optional[str]
    when: Optional[str]


@dataclass
class C2paReport:
    """What the file's C2PA manifest store says, and whether it checks out offline."""

    present: bool
    validation_state: Optional[str] = None  # "Invalid" | "Valid" | "Trusted"; None when nothing could be checked
    claim_generator: Optional[str] = None
    signer: Optional[str] = None  # certificate common name, else issuer
    issuer: Optional[str] = None
    signature_algorithm: Optional[str] = None
    signing_time: Optional[str] = None
    title: Optional[str] = None
    actions: list[C2paAction] = field(default_factory=list)
    digital_source_type: Optional[str] = None  # full URI of the most telling declared type
    digital_source_label: Optional[str] = None
    validation_errors: list[str] = field(default_factory=list)  # "code: explanation"
    ingredients: int = 0
    manifest_json: Optional[str] = None
    note: Optional[str] = None  # why nothing could be read, when that happened

    @property
    def declares_synthetic(self) -> bool:
        return _source_key(self.digital_source_type) in _SYNTHETIC_TYPES

    @property
    def declares_generative_ai(self) -> bool:
        return _source_key(self.digital_source_type) in _GENERATIVE_AI_TYPES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------- C2PA


def describe_source_type(uri: Optional[str]) -> Optional[str]:
    """Human label for an IPTC digital source type URI (unknown types keep their last path segment)."""
    key = _source_key(uri)
    if key is None:
        return None
    return DIGITAL_SOURCE_TYPES.get(key, key)


def _source_key(uri: Optional[str]) -> Optional[str]:
    if not uri:
        return None
    return uri.rstrip("/").rsplit("/", 1)[-1]


def read_c2pa(path: PathLike) -> C2paReport:
    """Read and validate the C2PA manifest store offline. Never raises for anything wrong with the file."""
    path = Path(path)
    try:
        import c2pa
    except ImportError as exc:  # the engine still works without provenance support
        return C2paReport(present=False, note=f"C2PA support is not installed ({exc})")
    try:
        with c2pa.Context.from_dict(OFFLINE_C2PA_SETTINGS) as context:
            reader = c2pa.Reader.try_create(str(path), context=context)
            if reader is None:
                return _no_manifest_or_damaged(path, "no manifest found")
            with reader:
                return _report_from_store(reader.json())
    except c2pa.C2paError.RemoteManifest as exc:
        return C2paReport(present=True, note=f"The Content Credentials are stored remotely and were not fetched "
                                             f"(offline reading): {_c2pa_message(exc)}")
    except c2pa.C2paError.NotSupported as exc:
        return _no_manifest_or_damaged(path, f"format not supported for C2PA reading ({_c2pa_message(exc)})")
    except c2pa.C2paError as exc:
        return _no_manifest_or_damaged(path, _c2pa_message(exc))
    except OSError as exc:
        return C2paReport(present=False, note=f"The file could not be read ({exc.strerror or exc})")
    except Exception as exc:  # anything else from the binding must not take an analysis down with it
        return _no_manifest_or_damaged(path, f"{type(exc).__name__}: {_c2pa_message(exc)}")


def _c2pa_message(exc: Exception) -> str:
    return (getattr(exc, "message", "") or str(exc) or type(exc).__name__).strip()[:300]


def _no_manifest_or_damaged(path: Path, reason: str) -> C2paReport:
    """The reader found nothing usable: either there is no manifest, or its container is too damaged to parse."""
    if _has_c2pa_jumbf(path):
        return C2paReport(present=True, validation_state="Invalid",
                          validation_errors=[f"manifest.unreadable: C2PA data is embedded but unreadable ({reason})"])
    note = None if reason == "no manifest found" else f"No readable Content Credentials: {reason}"
    return C2paReport(present=False, note=note)


def _has_c2pa_jumbf(path: Path) -> bool:
    """Byte scan for a C2PA JUMBF description box, to tell a damaged manifest from an absent one.

    The 20-byte pattern ('jumd' + a C2PA content-type UUID) cannot plausibly occur by chance, and the inner boxes
    (manifest, assertions, claim) still carry it when the outer store header is destroyed.
    """
    tail = b""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_JUMBF_SCAN_CHUNK):
                if _C2PA_JUMD.search(tail + chunk):
                    return True
                tail = chunk[-32:]
    except OSError:
        return False
    return False


def _report_from_store(store_json: str) -> C2paReport:
    try:
        store = json.loads(store_json)
        manifests = store.get("manifests") or {}
        active = manifests.get(store.get("active_manifest") or "") or {}
    except (ValueError, AttributeError) as exc:
        return C2paReport(present=True, validation_state="Invalid", manifest_json=store_json,
                          validation_errors=[f"manifest.json: the manifest store could not be parsed ({exc})"])
    errors = _validation_errors(store)
    signature = active.get("signature_info") or {}
    source = _most_telling_source([active, *manifests.values()])
    return C2paReport(
        present=True,
        validation_state=_validation_state(store.get("validation_state"), errors),
        claim_generator=_claim_generator(active),
        signer=_text(signature.get("common_name")) or _text(signature.get("issuer")),
        issuer=_text(signature.get("issuer")),
        signature_algorithm=_text(signature.get("alg")),
        signing_time=_text(signature.get("time")),
        title=_text(active.get("title")),
        actions=_actions(active),
        digital_source_type=source,
        digital_source_label=describe_source_type(source),
        validation_errors=errors,
        ingredients=len(active.get("ingredients") or []),
        manifest_json=store_json,
    )


def _validation_state(reported: Any, errors: list[str]) -> str:
    if reported in ("Invalid", "Valid", "Trusted"):
        return reported
    return "Invalid" if errors else "Valid"


def _validation_errors(store: dict) -> list[str]:
    """Failure codes of the active manifest and of ingredients, minus the trust-list-only ones."""
    results = store.get("validation_results")
    failures: list[tuple[str, dict]] = []
    if isinstance(results, dict):
        failures += [("", item) for item in (results.get("activeManifest") or {}).get("failure") or []]
        for delta in results.get("ingredientDeltas") or []:
            failures += [("ingredient ", item) for item in (delta.get("validationDeltas") or {}).get("failure") or []]
    else:  # older stores only carry the flat list
        failures = [("", item) for item in store.get("validation_status") or []]
    errors = []
    for prefix, item in failures:
        code = _text(item.get("code")) or "unknown"
        if code in _TRUST_ONLY_CODES:
            continue
        explanation = _text(item.get("explanation"))
        errors.append(f"{prefix}{code}" + (f": {explanation}" if explanation else ""))
    return list(dict.fromkeys(errors))


def _claim_generator(manifest: dict) -> Optional[str]:
    generator = _text(manifest.get("claim_generator"))
    if generator:
        return generator
    infos = manifest.get("claim_generator_info") or []
    names = [" ".join(filter(None, [_text(i.get("name")), _text(i.get("version"))]))
             for i in infos if isinstance(i, dict)]
    return ", ".join(n for n in names if n) or None


def _action_assertions(manifest: dict) -> list[dict]:
    out = []
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions"):
            out += [a for a in (assertion.get("data") or {}).get("actions") or [] if isinstance(a, dict)]
    return out


def _actions(manifest: dict) -> list[C2paAction]:
    actions: list[C2paAction] = []
    for raw in _action_assertions(manifest):
        params = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else {}
        agent = raw.get("softwareAgent")
        if isinstance(agent, dict):
            agent = " ".join(filter(None, [_text(agent.get("name")), _text(agent.get("version"))]))
        actions.append(C2paAction(
            action=_text(raw.get("action")) or "unknown",
            digital_source_type=_text(raw.get("digitalSourceType")) or _text(params.get("digitalSourceType")),
            software_agent=_text(agent),
            when=_text(raw.get("when")),
        ))
    return actions


def _most_telling_source(manifests: list[dict]) -> Optional[str]:
    """The declared type that says most about synthetic origin, across the active manifest and its ingredients."""
    rank = {key: i for i, key in enumerate(DIGITAL_SOURCE_TYPES)}
    declared = [a["digital_source_type"] for m in manifests for a in _actions(m) if a["digital_source_type"]]
    if not declared:
        return None
    return min(declared, key=lambda uri: rank.get(_source_key(uri) or "", len(rank)))


# --------------------------------------------------------------------------------------------- metadata


def _text(value: Any) -> Optional[str]:
    """A short printable string, or None for empty/binary/unprintable values."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = str(value).rstrip("\x00 ")
    if _BINARY_CHARS.search(text):  # undecodable or binary junk: skip rather than show mojibake
        return None
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return None
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    text = _text(value)
    if text is not None:
        out[key] = text


def read_metadata(path: PathLike, kind: str) -> dict[str, Any]:
    """Flat, JSON-serialisable metadata with human-readable keys. ``kind`` is "image" or "video".

    Odd or undecodable values are skipped; an unreadable file gives a "Metadata note" instead of an exception.
    GPS is reported as present or not, never as coordinates.
    """
    from .media.animated import is_animated_webp

    if kind not in ("image", "video"):
        raise ValueError(f"kind must be 'image' or 'video', not {kind!r}")
    path = Path(path)
    out: dict[str, Any] = {}
    try:
        out["File size (bytes)"] = path.stat().st_size
        # An animated WebP is a clip that Pillow, not FFmpeg, reads: its EXIF and XMP are image metadata.
        (_image_metadata if kind == "image" or is_animated_webp(path) else _video_metadata)(path, out)
    except Exception as exc:  # metadata is best effort: a strange file must not break an analysis
        out["Metadata note"] = f"metadata could not be fully read ({type(exc).__name__}: {_text(exc) or ''})".strip()
    return out


_EXIF_BASE = {271: "Camera make", 272: "Camera model", 305: "Software", 306: "Date modified", 315: "Artist",
              33432: "Copyright", 270: "Image description", 316: "Host computer"}
_EXIF_SUB = {36867: "Date taken", 36868: "Date digitised", 36881: "Time zone (taken)", 42035: "Lens make",
             42036: "Lens model"}
_ORIENTATION = {1: "Normal", 2: "Mirrored horizontally", 3: "Rotated 180°", 4: "Mirrored vertically",
                5: "Mirrored and rotated 90° counter-clockwise", 6: "Rotated 90° clockwise",
                7: "Mirrored and rotated 90° clockwise", 8: "Rotated 90° counter-clockwise"}
_GENERATOR_TEXT_KEYS = {"parameters", "prompt", "workflow", "dream", "sd-metadata", "invokeai_metadata",
                        "generation_data"}


def _image_metadata(path: Path, out: dict[str, Any]) -> None:
    from PIL import Image

    with Image.open(path) as im:  # header only: no pixels are decoded
        out["Format"] = im.format or "unknown"
        out["Dimensions"] = f"{im.width} x {im.height}"
        out["Colour mode"] = im.mode
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            out["Frames"] = frames
        _exif(im, out)
        _icc(im.info.get("icc_profile"), out)
        _xmp(im.info.get("xmp") or im.info.get("XML:com.adobe.xmp"), out)
        _png_text(im, out)


def _exif(im, out: dict[str, Any]) -> None:
    try:
        exif = im.getexif()
    except Exception:
        out["EXIF"] = "present but unreadable"
        return
    for tag, key in _EXIF_BASE.items():
        _safe_put(out, key, lambda: exif.get(tag))
    sub = _safe_ifd(exif, 0x8769)
    for tag, key in _EXIF_SUB.items():
        _safe_put(out, key, lambda: sub.get(tag))
    orientation = exif.get(274)
    if isinstance(orientation, int) and orientation in _ORIENTATION:
        out["Orientation"] = f"{_ORIENTATION[orientation]} ({orientation})"
    out["GPS location present"] = "yes" if _safe_ifd(exif, 0x8825) else "no"
    out["EXIF present"] = "yes" if len(exif) else "no"


def _safe_ifd(exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        return {}


def _safe_put(out: dict[str, Any], key: str, getter) -> None:
    try:
        _put(out, key, getter())
    except Exception:
        pass


def _icc(profile: Optional[bytes], out: dict[str, Any]) -> None:
    if not profile:
        return
    try:
        from PIL import ImageCms

        _put(out, "ICC profile", ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))))
    except Exception:
        out["ICC profile"] = "present (description unreadable)"


_XMP_FIELDS = {"CreatorTool": "XMP creator tool", "DigitalSourceType": "XMP digital source type",
               "History[^=>]*softwareAgent": "XMP history software"}


def _xmp(xmp: Any, out: dict[str, Any]) -> None:
    if not xmp:
        return
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    out["XMP present"] = "yes"
    for name, key in _XMP_FIELDS.items():
        # attribute form (ns:Name="v") or element form (<ns:Name>v</ns:Name>)
        match = re.search(rf':{name}="([^"]*)"', text) or re.search(rf":{name}>([^<]*)<", text)
        if match:
            _put(out, key, match.group(1))


def _png_text(im, out: dict[str, Any]) -> None:
    text_chunks = getattr(im, "text", None)
    if not isinstance(text_chunks, dict):
        return
    for key, value in list(text_chunks.items())[:20]:
        if str(key).lower().startswith("xml:com.adobe.xmp"):
            continue
        _put(out, f"PNG text: {_text(key) or '?'}", value)


# Container tags with their labels; anything carrying a location is reduced to "GPS location present".
_VIDEO_TAGS = {"encoder": "Encoder", "creation_time": "Creation time", "major_brand": "Major brand",
               "minor_version": "Minor version", "compatible_brands": "Compatible brands",
               "com.apple.quicktime.make": "Make", "com.apple.quicktime.model": "Model",
               "com.apple.quicktime.software": "Software",
               "com.apple.quicktime.creationdate": "Creation date (QuickTime)", "make": "Make", "model": "Model",
               "software": "Software", "title": "Title", "comment": "Comment", "artist": "Artist",
               "date": "Date", "handler_name": "Handler", "vendor_id": "Vendor", "language": "Language"}


def _refuse_nested_open(url: str, flags: int, options: dict):
    # A playlist-like demuxer (HLS, concat, dash) opens further URLs itself; with a Python file object FFmpeg
    # would otherwise reach the network (SSRF). Metadata never needs a second file.
    raise PermissionError(f"opening another resource ({_text(url)}) is not allowed while reading metadata")


def _video_metadata(path: Path, out: dict[str, Any]) -> None:
    import av

    with open(path, "rb") as fh, av.open(fh, metadata_errors="replace", io_open=_refuse_nested_open,
                                         timeout=10) as container:
        out["Container"] = container.format.long_name or container.format.name
        if container.duration:
            out["Duration (s)"] = round(container.duration / 1_000_000, 3)
        if container.bit_rate:
            out["Bit rate (bit/s)"] = int(container.bit_rate)
        _tags(container.metadata, "", out)
        counts: dict[str, int] = {}
        for stream in container.streams:
            counts[stream.type] = counts.get(stream.type, 0) + 1
            _stream_metadata(stream, f"{stream.type.capitalize()} stream {counts[stream.type]}", out)


def _tags(tags: Any, prefix: str, out: dict[str, Any]) -> None:
    for raw_key, value in dict(tags or {}).items():
        key = str(raw_key)
        lowered = key.lower()
        if "location" in lowered or "gps" in lowered or lowered.startswith("xyz"):
            out[f"{prefix}GPS location present".strip()] = "yes"
            continue
        label = _VIDEO_TAGS.get(lowered) or f"Tag {_text(key) or '?'}"
        if prefix:  # "Video stream 1 handler", not "Video stream 1 Handler"
            label = _lower_first(label)
        if lowered == "handler_name":
            value = _strip_length_prefix(value)
        _put(out, f"{prefix}{label}", value)


def _strip_length_prefix(value: Any) -> Any:
    """Some muxers store QuickTime handler names as Pascal strings; FFmpeg keeps the length byte as a character."""
    text = str(value)
    return text[1:] if len(text) > 1 and ord(text[0]) == len(text) - 1 else value


def _stream_metadata(stream, prefix: str, out: dict[str, Any]) -> None:
    codec = getattr(stream, "codec_context", None)
    _put(out, f"{prefix} codec", getattr(codec, "name", None))
    if stream.type == "video":
        width, height = getattr(codec, "width", 0), getattr(codec, "height", 0)
        if width and height:
            out[f"{prefix} dimensions"] = f"{width} x {height}"
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            out[f"{prefix} frame rate"] = round(float(rate), 3)
    _tags(stream.metadata, f"{prefix} ", out)


# --------------------------------------------------------------------------------------------- summary


def summarise_provenance(report: C2paReport, metadata: dict[str, Any]) -> list[str]:
    """Short sentences for a provenance badge or panel, most important first."""
    lines = _c2pa_lines(report)
    lines += _metadata_lines(metadata)
    return lines


def _c2pa_lines(report: C2paReport) -> list[str]:
    if not report.present:
        lines = ["No Content Credentials (C2PA) found. Most media carry none, so their absence proves nothing."]
        return lines + ([report.note] if report.note else [])
    if report.validation_state is None:
        return [f"Content Credentials present but not checked: {report.note or 'unknown reason'}"]
    lines = [_signature_line(report)]
    if report.digital_source_label:
        lines.append(f"Declared as {_lower_first(report.digital_source_label)}")
    names = [a["action"].removeprefix("c2pa.") for a in report.actions]
    if names:
        lines.append("Recorded actions: " + ", ".join(dict.fromkeys(names)))
    if report.ingredients:
        lines.append(f"Made from {report.ingredients} ingredient{'s' if report.ingredients != 1 else ''}")
    return lines


def _signature_line(report: C2paReport) -> str:
    who = report.signer or "an unknown signer"
    if report.issuer and report.issuer != report.signer:
        who += f" (issued by {report.issuer})"
    tool = f" with {report.claim_generator}" if report.claim_generator else ""
    when = f" on {report.signing_time}" if report.signing_time else ""
    state = report.validation_state
    if state == "Trusted":
        verdict = "Trusted (the signer's certificate is on a configured trust list)"
    elif state == "Valid":
        verdict = "Valid (no trust list configured, so the signer is not verified as trusted)"
    else:
        shown = "; ".join(report.validation_errors[:3]) or "validation failed"
        verdict = f"INVALID: {shown}. The file changed after signing or its manifest is damaged"
    return f"Content Credentials present: signed by {who}{tool}{when} — {verdict}"


def _camera(metadata: dict[str, Any]) -> str:
    for make_key, model_key in (("Camera make", "Camera model"), ("Make", "Model")):
        make, model = str(metadata.get(make_key, "")), str(metadata.get(model_key, ""))
        if make or model:
            # EXIF models often repeat the make ("Canon" + "Canon EOS REBEL T3")
            return model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return ""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _metadata_lines(metadata: dict[str, Any]) -> list[str]:
    lines = []
    camera = _camera(metadata)
    if camera:
        lines.append(f"Camera: {camera}")
    shown: set[str] = set()
    for key, label in (("Software", "Software"), ("XMP creator tool", "Created with"), ("Date taken", "Taken"),
                       ("Creation time", "Created")):
        if key in metadata and str(metadata[key]) not in shown:
            shown.add(str(metadata[key]))
            lines.append(f"{label}: {metadata[key]}")
    encoders = dict.fromkeys(str(v) for k, v in metadata.items() if k == "Encoder" or k.endswith(" encoder"))
    if encoders:
        lines.append("Encoder: " + ", ".join(encoders))
    handlers = sorted({str(v) for k, v in metadata.items() if k.endswith(" handler")})
    if handlers:
        lines.append("Handlers: " + ", ".join(handlers))
    if metadata.get("XMP digital source type"):
        label = describe_source_type(str(metadata["XMP digital source type"]))
        lines.append(f"XMP metadata declares {_lower_first(label or '')} (unsigned, easily edited)")
    generator_keys = [k for k in metadata if k.startswith("PNG text: ") and k[10:].lower() in _GENERATOR_TEXT_KEYS]
    if generator_keys:
        lines.append(f"PNG text holds image-generator settings ({', '.join(k[10:] for k in generator_keys)})")
    if metadata.get("GPS location present") == "yes":
        lines.append("GPS location present in the metadata (coordinates not shown)")
    if lines:
        lines.append("Metadata is unsigned and easy to edit or strip: a hint, not proof.")
    return lines


__all__ = ["C2paAction", "C2paReport", "DIGITAL_SOURCE_TYPES", "OFFLINE_C2PA_SETTINGS", "describe_source_type",
           "read_c2pa", "read_metadata", "summarise_provenance"]
