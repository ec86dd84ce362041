"""How every module of the collection changes tags: amazon.aws semantics, and the tags after."""

from __future__ import annotations

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import plan_tags

CURRENT = {"keep": "1", "old": "x", "aws:cloudformation:stack-name": "s"}


def test_no_tags_given_means_no_tag_change_even_with_purge():
    assert plan_tags(CURRENT, None, purge=True) == (CURRENT, {}, [])


def test_purge_removes_tags_not_given_but_keeps_aws_tags():
    after, to_set, to_remove = plan_tags(CURRENT, {"keep": "1", "new": "2"}, purge=True)
    assert (to_set, to_remove) == ({"new": "2"}, ["old"])
    assert after == {"keep": "1", "new": "2", "aws:cloudformation:stack-name": "s"}


def test_without_purge_only_new_or_changed_tags_are_set():
    after, to_set, to_remove = plan_tags(CURRENT, {"keep": "9"}, purge=False)
    assert (to_set, to_remove) == ({"keep": "9"}, [])
    assert after == dict(CURRENT, keep="9")


def test_the_tags_before_are_not_changed_in_place():
    current = {"a": "1"}
    plan_tags(current, {"b": "2"}, purge=True)
    assert current == {"a": "1"}
