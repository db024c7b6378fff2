"""template.yaml as CloudFormation reads it, for the local stack.

Loading is cfn-lint's decoder (what `make lint` already parses the template with), so the local run accepts
exactly the YAML, short-form tags and duplicate-key rules that the linter does. `Resolver` then evaluates the
intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If, conditions)
against local parameter values and the local stack's physical ids. `substitute` is DefinitionSubstitutions,
shared by the stack builder and the tests so that both build state machines the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
OPENAPI = ROOT / "api" / "openapi.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "sms-status-local"


class LocalSetupError(RuntimeError):
    """The template or the local settings cannot be turned into a local stack; the message says why."""


def load_yaml(path: Path) -> dict[str, Any]:
    """A CloudFormation-style YAML (or JSON) file; short forms come back as long forms (`!GetAtt A.B` is
    {"Fn::GetAtt": ["A", "B"]}). Values are cfn-lint's dict/list/str subclasses, which carry line numbers."""
    from cfnlint.decode import decode  # ~0.5 s to import: only when a template is read

    document, problems = decode(str(path))
    if problems:
        first = problems[0]
        raise LocalSetupError(f"{path}:{first.linenumber}: {first.message}")
    return document  # type: ignore[return-value]


def load_template_checked(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise LocalSetupError(f"{path} is missing")
    template = load_yaml(path)
    if not isinstance(template, dict) or "Resources" not in template:
        raise LocalSetupError(f"{path} has no Resources")
    return template


def substitute(definition: str, substitutions: Mapping[str, Any]) -> str:
    """DefinitionSubstitutions: every `${Name}` becomes its value; a name without one is an error, as in
    CloudFormation. ASL's own `$$.Map.Item.Value` and `States.Format('{}', $.x)` contain no `${`: untouched."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise LocalSetupError(f"the state machine definition uses ${{{name}}}, which DefinitionSubstitutions does not define")
        return str(substitutions[name])

    return re.sub(r"\$\{([^}]*)\}", value, definition)


@dataclass
class Physical:
    """What Ref and Fn::GetAtt give for one resource in the local stack."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


def arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


class Resolver:
    """Resolves the intrinsic functions of template values against local parameters and physical ids."""

    PSEUDO = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK,
        "AWS::StackId": arn("cloudformation", f"stack/{STACK}/00000000-0000-0000-0000-000000000000"),
        "AWS::URLSuffix": "amazonaws.com",
    }
    _NO_VALUE = object()

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str], physical: Mapping[str, Physical]) -> None:
        self.template = template
        self.parameters = parameters
        self.physical = physical

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not self._NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, self.resolve(attr))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(self.resolve(sep)).join(str(item) for item in self.resolve(items))
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(str(self.resolve(separator)))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::FindInMap":
                mapping, top, second = (str(self.resolve(part)) for part in arg)
                try:
                    return self.template["Mappings"][mapping][top][second]
                except (KeyError, TypeError):
                    raise LocalSetupError(f"template.yaml: Fn::FindInMap [{mapping}, {top}, {second}] finds nothing") from None
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg))
            if key.startswith("Fn::"):
                raise LocalSetupError(f"the local run does not support {key} (used in template.yaml)")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not self._NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return self._NO_VALUE
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        raise LocalSetupError(f"template.yaml refers to {name!r}, which is neither a parameter nor a resource")

    def get_att(self, logical: str, attr: str) -> str:
        resource = self.physical.get(logical)
        if resource is None:
            raise LocalSetupError(f"template.yaml uses Fn::GetAtt on unknown resource {logical!r}")
        if attr not in resource.attrs:
            # An attribute nothing local reads (e.g. a stream ARN): a stable placeholder keeps the value readable.
            return f"{resource.ref}#{attr}"
        return resource.attrs[attr]

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.physical:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def condition(self, name: str) -> bool:
        spec = (self.template.get("Conditions") or {}).get(name)
        if spec is None:
            raise LocalSetupError(f"template.yaml uses unknown condition {name!r}")
        return bool(self._evaluate(spec))

    def _evaluate(self, spec: Any) -> Any:
        if isinstance(spec, dict) and len(spec) == 1:
            (key, arg), *_ = spec.items()
            match key:
                case "Fn::Equals":
                    left, right = (self._evaluate(item) for item in arg)
                    return str(left) == str(right)
                case "Fn::Not":
                    return not self._evaluate(arg[0])
                case "Fn::And":
                    return all(self._evaluate(item) for item in arg)
                case "Fn::Or":
                    return any(self._evaluate(item) for item in arg)
                case "Condition":
                    return self.condition(arg)
        return self.resolve(spec)
