-- 007: anti-spam (R5.1): weighted rules whose scores add up to each message's spam score, and
-- the default anti-spam policy rule. Kept by `portcullis spam …` (parent/admin/admin_spam.c),
-- which validates the whole set with policy_compile() before any row changes; the enabled
-- rules travel in ConfigSnapshot.spam_rules in position order.

CREATE TABLE spam_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 127),
    -- 1..n, dense; deferrable so that a renumbering UPDATE may pass through duplicates
    position    integer NOT NULL CHECK (position >= 1),
    kind        text NOT NULL CHECK (kind IN ('header_regex', 'header_missing', 'body_regex',
                                              'ers_listed', 'web_reputation')),
    value       text NOT NULL DEFAULT '',      -- as the policy condition of the same kind
    score       double precision NOT NULL CHECK (score BETWEEN -100 AND 100),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT spam_rules_position_key UNIQUE (position) DEFERRABLE INITIALLY IMMEDIATE
);

-- The default rule set. Scores are chosen so that one strong sign (a block-list listing named
-- "spam") or two weaker ones together reach the default threshold of 5:
--   caps_subject        a Subject with no lower-case letter and 4 capitals in a row   2.5
--   spam_phrases        phrases typical of spam in a text body                         3.0
--   money_phrases       advance-fee and money-transfer phrases                         2.0
--   missing_date        no Date header (RFC 5322 requires one)                         1.5
--   missing_message_id  no Message-ID header                                           1.5
--   ers_spam            the client address has an email-reputation listing "spam"     5.0
--   bad_urls            a URL rated 70 or worse by web reputation                      4.0
INSERT INTO spam_rules (name, position, kind, value, score) VALUES
    ('caps_subject', 1, 'header_regex', 'Subject: (?-i)^[^a-z]*[A-Z]{4}[^a-z]*$', 2.5),
    ('spam_phrases', 2, 'body_regex',
     '\b(viagra|cialis|you have (been selected|won)|lottery winner|100% free|act now|'
     'risk[- ]free|no credit check|click here to (claim|unsubscribe)|limited time offer)\b', 3.0),
    ('money_phrases', 3, 'body_regex',
     '\b(million (us )?(dollars|usd|euros?)|wire transfer fee|western union|'
     'next of kin|beneficiary of)\b', 2.0),
    ('missing_date', 4, 'header_missing', 'Date', 1.5),
    ('missing_message_id', 5, 'header_missing', 'Message-ID', 1.5),
    ('ers_spam', 6, 'ers_listed', 'spam', 5.0),
    ('bad_urls', 7, 'web_reputation', '70', 4.0);

-- The default anti-spam policy rule (R5.1): after "Viruses" and "Scan exceptions".
INSERT INTO policy_rules (name, position, conditions, actions)
SELECT 'Spam', (SELECT coalesce(max(position), 0) + 1 FROM policy_rules),
       '[{"kind": "spam_score", "value": "5", "negate": false}]',
       '[{"kind": "quarantine", "arg": "Default quarantine"}]'
WHERE EXISTS (SELECT 1 FROM areas WHERE name = 'Default quarantine' AND kind = 'quarantine')
ON CONFLICT (name) DO NOTHING;

INSERT INTO config_versions (reason) VALUES ('default anti-spam rules and policy rule "Spam"');
