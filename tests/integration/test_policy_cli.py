"""Policy rules and areas on the parent (R5.1, R5.2): the defaults, `portcullis policy` and
`portcullis area` changes, refusals that change nothing, and every change reaching the
children, which compile the policy themselves before they store a configuration."""

import json

import pytest

from harness import Cluster, wait_until

DEFAULT_Q = "Default quarantine"
DEFAULT_A = "Default archive"


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=2, upstream=False).start()
    yield c
    c.stop()


def _rules(cluster):
    return json.loads(cluster.cli_ok("policy", "list", "--json"))


def _areas(cluster):
    return {a["name"]: a for a in json.loads(cluster.cli_ok("area", "list", "--json"))["areas"]}


def _names(cluster):
    return [r["name"] for r in _rules(cluster)["rules"]]


def _version(cluster):
    return cluster.status()["config_version"]


def _refused(cluster, *args, expect):
    """Runs a change that must be refused: exit 2, every expected text in stderr, and the
    rules, areas and configuration version exactly as before."""
    v0, rules0, areas0 = _version(cluster), _rules(cluster), _areas(cluster)
    rc, out, err = cluster.cli(*args)
    assert rc == 2, f"{args} not refused: rc={rc} out={out!r} err={err!r}"
    for text in expect:
        assert text in err, f"{args}: {err!r} lacks {text!r}"
    print(f"refused: portcullis {' '.join(args)}\n  {err.strip()}")
    assert _version(cluster) == v0
    assert _rules(cluster) == rules0
    assert _areas(cluster) == areas0


def test_r5_defaults_present(cluster):
    """R5.1/R5.2: a new cluster has the areas "Default quarantine" (quarantine) and "Default
    archive" (archive), 15 days each, and the default policy: viruses, scan exceptions and the
    default anti-spam rule (spam score at or above 5) to the default quarantine, in that order,
    enabled, for any message."""
    areas = _areas(cluster)
    assert areas[DEFAULT_Q]["kind"] == "quarantine" and areas[DEFAULT_Q]["retention_days"] == 15
    assert areas[DEFAULT_A]["kind"] == "archive" and areas[DEFAULT_A]["retention_days"] == 15
    assert areas[DEFAULT_Q]["used_by"] == ["Viruses", "Scan exceptions", "Spam"]
    rules = _rules(cluster)["rules"]
    assert [(r["position"], r["name"]) for r in rules] == [(1, "Viruses"), (2, "Scan exceptions"),
                                                           (3, "Spam")]
    for r, kind, value in zip(rules, ("virus_found", "scan_exception", "spam_score"),
                              ("", "", "5")):
        assert r["enabled"] and r["scope"] == "any" and r["domains"] == []
        assert r["conditions"] == [{"kind": kind, "value": value, "negate": False}]
        assert r["actions"] == [{"kind": "quarantine", "arg": DEFAULT_Q}]
    text = cluster.cli_ok("policy", "list")
    print(text)
    assert "Viruses" in text and 'quarantine "Default quarantine"' in text
    text = cluster.cli_ok("area", "list")
    print(text)
    assert "Default archive" in text and "15 days" in text


def test_r5_rules_add_move_disable_remove(cluster):
    """R5.1: `policy add` (last, or at --position), `move`, `disable`/`enable` and `remove`
    each make exactly one new configuration version and leave positions dense 1..n; a bare
    `--then quarantine` goes to the default quarantine area."""
    v = _version(cluster)
    cluster.cli_ok("policy", "add", "Block exe", "--if", "attachment_extension=exe,scr",
                   "--then", "quarantine", "--then", "tag_subject=[EXE]")
    assert _version(cluster) == v + 1
    cluster.cli_ok("policy", "add", "Big", "--position", "1", "--scope", "inbound",
                   "--domains", "child1.test,child2.test", "--match", "any",
                   "--if", "message_size_over=10M", "--if-not", "sender=@trusted\\.test$",
                   "--then", "delete")
    assert _version(cluster) == v + 2
    rules = _rules(cluster)["rules"]
    assert [r["name"] for r in rules] == ["Big", "Viruses", "Scan exceptions", "Spam", "Block exe"]
    assert [r["position"] for r in rules] == [1, 2, 3, 4, 5]
    big, exe = rules[0], rules[4]
    assert big["scope"] == "inbound" and big["domains"] == ["child1.test", "child2.test"]
    assert big["match"] == "any"
    assert big["conditions"][1] == {"kind": "sender", "value": "@trusted\\.test$", "negate": True}
    assert exe["actions"] == [{"kind": "quarantine", "arg": DEFAULT_Q},
                              {"kind": "tag_subject", "arg": "[EXE]"}]
    print(cluster.cli_ok("policy", "list"))

    cluster.cli_ok("policy", "move", "Block exe", "1")
    assert _names(cluster) == ["Block exe", "Big", "Viruses", "Scan exceptions", "Spam"]
    cluster.cli_ok("policy", "move", "Block exe", "3")
    assert _names(cluster) == ["Big", "Viruses", "Block exe", "Scan exceptions", "Spam"]
    assert _version(cluster) == v + 4

    cluster.cli_ok("policy", "disable", "Big")
    assert [r["enabled"] for r in _rules(cluster)["rules"]] == [False, True, True, True, True]
    assert "nothing to change" in cluster.cli_ok("policy", "disable", "Big")
    cluster.cli_ok("policy", "enable", "Big")
    assert _version(cluster) == v + 6

    cluster.cli_ok("policy", "remove", "Big")
    cluster.cli_ok("policy", "remove", "Block exe")
    rules = _rules(cluster)["rules"]
    assert [(r["position"], r["name"]) for r in rules] == [(1, "Viruses"), (2, "Scan exceptions"),
                                                           (3, "Spam")]
    assert _version(cluster) == v + 8


def test_r5_areas_add_set_remove(cluster):
    """R5.2: an area is added with its kind and retention (default 15, 1..60), its retention
    changed, and removal is refused while a rule uses it — the message names the rule."""
    cluster.cli_ok("area", "add", "Legal hold", "--kind", "archive", "--retention-days", "60")
    cluster.cli_ok("area", "add", "Spam", "--kind", "quarantine")
    areas = _areas(cluster)
    assert areas["Legal hold"]["kind"] == "archive" and areas["Legal hold"]["retention_days"] == 60
    assert areas["Spam"]["retention_days"] == 15
    cluster.cli_ok("area", "set", "Legal hold", "--retention-days", "30")
    assert _areas(cluster)["Legal hold"]["retention_days"] == 30
    cluster.cli_ok("policy", "add", "Keep legal", "--if", "recipient=^legal@",
                   "--then", "archive=Legal hold")
    _refused(cluster, "area", "remove", "Legal hold",
             expect=['area "Legal hold" is used by rule "Keep legal" (action 1)'])
    _refused(cluster, "area", "remove", DEFAULT_Q,
             expect=['area "Default quarantine" is used by rule "Viruses"'])
    cluster.cli_ok("policy", "remove", "Keep legal")
    cluster.cli_ok("area", "remove", "Legal hold")
    cluster.cli_ok("area", "remove", "Spam")
    assert set(_areas(cluster)) == {DEFAULT_Q, DEFAULT_A}


def test_r5_invalid_changes_refused_nothing_changed(cluster):
    """R5.1/R5.2: a bad regular expression (with the PCRE2 message and offset), a quarantine to
    an unknown area or to an archive area, an unknown condition, a bad size, an area retention
    out of 1..60, duplicates and unknown names are refused with exit 2 and a message naming
    the rule and the condition or action; nothing changes, not even the configuration
    version."""
    _refused(cluster, "policy", "add", "Bad body", "--if", "body_regex=(free money",
             "--then", "delete",
             expect=['portcullis: rule "Bad body": condition 1 (body_regex): bad regular '
                     'expression at offset 11: missing closing parenthesis'])
    _refused(cluster, "policy", "add", "Nowhere", "--if", "virus_found",
             "--then", "quarantine=Nowhere",
             expect=['rule "Nowhere": action 1 (quarantine): no area is named "Nowhere"'])
    _refused(cluster, "policy", "add", "Wrong kind", "--then", f"quarantine={DEFAULT_A}",
             expect=['area "Default archive" is an archive area; quarantine needs a quarantine'])
    _refused(cluster, "policy", "add", "Typo", "--if", "virus_fond", "--then", "delete",
             expect=['condition 1 (virus_fond): unknown condition'])
    _refused(cluster, "policy", "add", "Size", "--if", "message_size_over=ten", "--then", "delete",
             expect=['"ten" is not a number of bytes'])
    _refused(cluster, "policy", "add", "Viruses", "--then", "delete",
             expect=['a rule named "Viruses" already exists'])
    _refused(cluster, "policy", "add", "Two fates", "--then", "deliver", "--then", "delete",
             expect=['action 2 (delete): the rule already decides the message with action 1'])
    _refused(cluster, "policy", "add", "Far", "--position", "9", "--then", "delete",
             expect=["position 9 is out of range: from 1 to 4"])
    _refused(cluster, "policy", "move", "Nobody", "1", expect=['no rule is named "Nobody"'])
    _refused(cluster, "area", "add", "Long", "--kind", "quarantine", "--retention-days", "61",
             expect=['area "Long": retention_days 61 is out of range: from 1 to 60'])
    _refused(cluster, "area", "add", "Odd", "--kind", "trash",
             expect=['area "Odd": unknown kind "trash"'])
    _refused(cluster, "area", "set", DEFAULT_Q, "--retention-days", "0",
             expect=["retention_days 0 is out of range"])


def test_r5_change_reaches_children_which_compile_it(cluster):
    """R5.1 with R6.2: a valid rule change becomes a configuration version both children run
    (config_current); a policy written behind the CLI's back that does not compile is refused
    by each child with the compiler's message (the child checks it itself) and the children
    keep their last good configuration; once fixed, both are current again."""
    v0 = _version(cluster)
    cluster.wait_children_current(v0, 15)
    cluster.cli_ok("policy", "add", "Tag big", "--if", "message_size_over=5M",
                   "--then", "tag_subject=[BIG]", "--then", "archive")
    v1 = _version(cluster)
    assert v1 == v0 + 1
    cluster.wait_children_current(v1, 10)

    # Behind the CLI: a regex no child can compile.
    cluster.pg.query(
        "INSERT INTO policy_rules (name, position, conditions, actions) VALUES "
        "('Smuggled', 99, '[{\"kind\": \"body_regex\", \"value\": \"([a-z\", \"negate\": false}]',"
        " '[{\"kind\": \"delete\", \"arg\": \"\"}]')")
    cluster.pg.query("INSERT INTO config_versions (reason) VALUES ('test: smuggled rule')")
    cluster.pg.query("SELECT pg_notify('portcullis_config', 'test')")
    v2 = _version(cluster)

    def refused_by_both():
        st = cluster.status()
        errs = {}
        for n in cluster.children:
            c = cluster.child_status(n, st)
            if not c or not c.get("config_error"):
                return None
            errs[n] = c
        return errs

    errs = wait_until(refused_by_both, 15, "both children to refuse the smuggled rule")
    for n, c in errs.items():
        print(f"{n} refused version {v2}: {c['config_error']}")
        assert 'rule "Smuggled": condition 1 (body_regex): bad regular expression' in \
            c["config_error"]
        assert c["config_version"] == v1 and c["config_current"] is False

    cluster.pg.query("DELETE FROM policy_rules WHERE name = 'Smuggled'")
    cluster.cli_ok("policy", "remove", "Tag big")
    v3 = _version(cluster)
    st = cluster.wait_children_current(v3, 10)
    for n in cluster.children:
        assert not cluster.child_status(n, st).get("config_error")
