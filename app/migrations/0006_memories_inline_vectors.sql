-- Keep rows up to a page inline: a 768-dim vector (3 KB) is above the default 2 KB toast target, so each
-- row read by an exact search took two extra TOAST fetches. Rows already stored move inline when rewritten
-- (VACUUM FULL); larger vectors are still toasted, so no dimension is refused.
ALTER TABLE "{collection}" SET (toast_tuple_target = 8160);
