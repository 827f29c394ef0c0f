-- 013: authenticated look-ups (R8.7). The look-up service's X25519 secret key, made by the
-- parent at its first start with this schema; its public half travels in every snapshot and
-- each child derives its credential from it and its own key (common/lookup_auth.h).
ALTER TABLE update_server ADD COLUMN lookup_secret bytea
    CHECK (lookup_secret IS NULL OR octet_length(lookup_secret) = 32);

-- Children now look up only over HTTPS pinned to the parent's key: a plain-http look-up
-- address is dropped (smart scan then has no server until one is set), and a web-reputation
-- address that named the third-party rating service moves to wrs.service_url, which the
-- parent's look-up service asks on the children's behalf.
INSERT INTO settings (section, name, value)
SELECT 'wrs', 'service_url', value FROM settings
WHERE section = 'wrs' AND name = 'url' AND value NOT LIKE 'https://%'
ON CONFLICT (section, name) DO NOTHING;
DELETE FROM settings WHERE section IN ('wrs', 'smart_scan') AND name = 'url'
    AND value NOT LIKE 'https://%';

INSERT INTO config_versions (reason) VALUES ('look-ups over HTTPS with per-child credentials');
