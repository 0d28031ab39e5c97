-- MEM0_RATE_LIMIT shared by every replica: each adds the requests it admitted to its key's current window.
CREATE TABLE IF NOT EXISTS rate_windows (
    key_id text NOT NULL,
    window_start bigint NOT NULL,  -- epoch seconds, a multiple of the window's length
    requests bigint NOT NULL,
    PRIMARY KEY (key_id, window_start)
);
