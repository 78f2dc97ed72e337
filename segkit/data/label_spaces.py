"""Whether two datasets' classes are one label space (domain adaptation). Standard library
only: the config checks call it before torch is imported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def check_label_spaces(
    source_classes: Sequence[str],
    target_classes: Sequence[str],
    mapping: Mapping[int, int] | None,
    ignore_index: int = 255,
    key: str = "label_mapping",
    sides: tuple[str, str] = ("source", "target"),
) -> None:
    """ValueError unless the source's classes are the target's (same count and names, in
    order), or `mapping` (source class -> target class, or `ignore_index`) covers every source
    class with a valid target class. `key` (the config key of `mapping`) and `sides` (the
    two label spaces' names) word the errors."""
    source_classes, target_classes = list(source_classes), list(target_classes)
    source, target = sides
    if mapping is None:
        if source_classes != target_classes:
            raise ValueError(
                f"the {source}'s {len(source_classes)} classes {source_classes} differ from the "
                f"{target}'s {len(target_classes)} {target_classes}: domain adaptation needs one "
                f"label space; give data.{key} ({source} class index -> {target} class "
                "index) to map them"
            )
        return
    for old, new in mapping.items():
        if not 0 <= int(old) < len(source_classes):
            raise ValueError(
                f"data.{key}: {source} class {old} does not exist (the {source} has "
                f"classes 0..{len(source_classes) - 1})"
            )
        if int(new) != ignore_index and not 0 <= int(new) < len(target_classes):
            raise ValueError(
                f"data.{key}: {old} -> {new} is not a {target} class (expected "
                f"0..{len(target_classes) - 1} or {ignore_index} to ignore)"
            )
    missing = [i for i in range(len(source_classes)) if i not in {int(k) for k in mapping}]
    if missing:
        raise ValueError(
            f"data.{key} leaves {source} classes {missing} unmapped: map each to a "
            f"{target} class or to {ignore_index} (ignored)"
        )


def check_pair_label_spaces(
    source_classes: Sequence[str],
    target_classes: Sequence[str],
    pair_classes: Sequence[str],
    label_mapping: Mapping[int, int] | None,
    target_label_mapping: Mapping[int, int] | None,
    ignore_index: int = 255,
) -> None:
    """ValueError unless a domain pair's source classes (through ``data.label_mapping``) and
    target classes (through ``data.target_label_mapping``) are, or map onto, the pair's."""
    pair = "target" if target_label_mapping is None else "pair"
    check_label_spaces(
        source_classes, pair_classes, label_mapping, ignore_index, sides=("source", pair)
    )
    check_label_spaces(
        target_classes,
        pair_classes,
        target_label_mapping,
        ignore_index,
        "target_label_mapping",
        ("target", "pair"),
    )
