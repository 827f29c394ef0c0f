-- 012: trust boundaries (R8.8). A tracking record whose received time lies outside the window
-- the parent keeps (older than 30 days, or more than an hour ahead of the parent's clock) is
-- stored in the current day's partition, so that no child can make the parent create a
-- partition it chose; the time the child claimed is kept here.
ALTER TABLE message_log ADD COLUMN claimed_received_at timestamptz;

-- R8.2: the parent never names a command for a child to run. The command-line settings are
-- gone; mta.adapter chooses among the adapters the children know (postfix, postfix:DIR, local,
-- none). An override of a removed setting would make every configuration invalid: dropped.
DELETE FROM settings WHERE (section, name) IN
    (('mta', 'postconf_command'), ('mta', 'reload_command'), ('supervise', 'flush_command'));

-- Issue 11 point 5: GTUBE, the standard anti-spam test string, is spam under the default
-- rules (its score alone is past the default threshold of 5, so the "Spam" rule holds it).
INSERT INTO spam_rules (name, position, kind, value, score)
SELECT 'gtube', (SELECT coalesce(max(position), 0) + 1 FROM spam_rules), 'body_regex',
       'XJS\*C4JDBQADN1\.NSBN3\*2IDNEN\*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL\*C\.34X', 100
ON CONFLICT (name) DO NOTHING;

INSERT INTO config_versions (reason) VALUES ('trust boundaries: adapters, the GTUBE spam rule');
