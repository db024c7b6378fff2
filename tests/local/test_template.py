"""local.template: the one DefinitionSubstitutions implementation, and reading templates with cfn-lint's decoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.template import LocalSetupError, Physical, Resolver, load_template_checked, substitute


def test_substitute_replaces_every_placeholder_with_its_value():
    assert substitute('{"Resource": "${FnArn}", "Bucket": "${Bucket}", "Again": "${FnArn}"}', {"FnArn": "arn:fn", "Bucket": "b"}) == (
        '{"Resource": "arn:fn", "Bucket": "b", "Again": "arn:fn"}'
    )


def test_substitute_refuses_a_name_without_a_value():
    with pytest.raises(LocalSetupError, match=r"\$\{Missing\}"):
        substitute('{"Resource": "${FnArn}", "Other": "${Missing}"}', {"FnArn": "arn:fn"})


def test_substitute_leaves_asl_paths_and_intrinsics_alone():
    definition = '{"Item.$": "$$.Map.Item.Value", "Message.$": "States.Format(\'{}\', $.x)", "Fn": "${Fn}"}'
    assert (
        substitute(definition, {"Fn": "arn:fn"})
        == '{"Item.$": "$$.Map.Item.Value", "Message.$": "States.Format(\'{}\', $.x)", "Fn": "arn:fn"}'
    )


def test_short_forms_load_as_long_forms_the_resolver_evaluates(tmp_path: Path):
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Queue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Properties:\n"
        "      Dotted: !GetAtt Queue.Arn\n"
        "      Listed: !GetAtt [Queue, Arn]\n"
        "      Sub: !Sub ${Queue.Arn}/x\n"
        "      Ref: !Ref Queue\n"
    )
    template = load_template_checked(path)
    props = template["Resources"]["Queue"]["Properties"]
    assert props["Dotted"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    resolved = Resolver(template, {}, {"Queue": Physical("q-url", {"Arn": "arn:q"})}).resolve(props)
    assert resolved == {"Dotted": "arn:q", "Listed": "arn:q", "Sub": "arn:q/x", "Ref": "q-url"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "is missing"),
        ("Resources: [\n", "did not find expected node"),
        ("Resources:\n  A: {}\n  A: {}\n", "Duplicate"),
        ("{}\n", "no Resources"),
    ],
)
def test_a_missing_or_invalid_template_is_a_setup_error(tmp_path: Path, text: str | None, reason: str):
    path = tmp_path / "template.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(LocalSetupError, match=reason):
        load_template_checked(path)
