-- The region an environment runs in, so usage terms (allowed_regions) can be enforced on
-- deployment. NULL: not declared (a version whose terms restrict regions cannot go there).
ALTER TABLE environments ADD COLUMN region TEXT;
