"""template.yaml as plain data: short tags (!Ref, !Sub...) read as one-key dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short intrinsic tags (!Ref, !Sub...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


def template() -> dict[str, Any]:
    """The whole template."""
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # type: ignore[no-any-return]  # noqa: S506 - SafeLoader subclass


def resources() -> dict[str, Any]:
    """The template's resources by logical id."""
    return template()["Resources"]  # type: ignore[no-any-return]


def saved_queries() -> dict[str, str]:
    """Each ``AWS::Logs::QueryDefinition``'s query string, by logical id."""
    return {
        name: resource["Properties"]["QueryString"]
        for name, resource in resources().items()
        if resource["Type"] == "AWS::Logs::QueryDefinition"
    }
