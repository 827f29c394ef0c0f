-- 012: trust boundaries (R8.8). A tracking record whose received time lies outside the window
-- the parent keeps (older than 30 days, or more than an hour ahead of the parent's clock) is
-- stored in the current day's partition, so that no child can make the parent create a
-- partition it chose; the time the child claimed is kept here.
ALTER TABLE message_log ADD COLUMN claimed_received_at timestamptz;
