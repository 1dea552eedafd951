"""Schema migrations, applied in order; each runs once and is recorded by name.

Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE batches (
            batch_id     TEXT PRIMARY KEY,
            plan_name    TEXT NOT NULL,
            plan_source  TEXT NOT NULL,
            plan_json    TEXT NOT NULL,
            options_json TEXT NOT NULL,
            host_json    TEXT NOT NULL,
            started_at   REAL NOT NULL,
            finished_at  REAL,
            status       TEXT NOT NULL
        );
        CREATE TABLE runs (
            run_id          TEXT PRIMARY KEY,
            seq             INTEGER NOT NULL,
            batch_id        TEXT NOT NULL REFERENCES batches(batch_id),
            model_name      TEXT NOT NULL,
            model_class     TEXT NOT NULL,
            task            TEXT NOT NULL,
            reasoning_state TEXT NOT NULL,
            backend         TEXT NOT NULL,
            settings_label  TEXT NOT NULL,
            config_json     TEXT NOT NULL,
            planned_samples INTEGER NOT NULL,
            status          TEXT NOT NULL,
            error_message   TEXT,
            created_at      REAL NOT NULL,
            updated_at      REAL NOT NULL
        );
        CREATE TABLE attempts (
            run_id        TEXT NOT NULL REFERENCES runs(run_id),
            attempt       INTEGER NOT NULL,
            batch_id      TEXT NOT NULL,
            started_at    REAL NOT NULL,
            last_seen_at  REAL NOT NULL,
            finished_at   REAL,
            status        TEXT NOT NULL,
            error_message TEXT,
            load_time_s   REAL,
            peak_rss_mb   REAL,
            host_json     TEXT,
            details_json  TEXT,
            PRIMARY KEY (run_id, attempt)
        );
        CREATE TABLE samples (
            run_id            TEXT NOT NULL REFERENCES runs(run_id),
            sample_index      INTEGER NOT NULL,
            sample_id         TEXT NOT NULL,
            attempt           INTEGER NOT NULL,
            input_json        TEXT NOT NULL,
            output_text       TEXT NOT NULL,
            prompt_tokens     INTEGER,
            completion_tokens INTEGER,
            latency_s         REAL,
            ttft_s            REAL,
            finish_reason     TEXT,
            cpu_seconds       REAL,
            energy_wh         REAL,
            energy_method     TEXT NOT NULL,
            scores_json       TEXT,
            error             TEXT,
            created_at        REAL NOT NULL,
            PRIMARY KEY (run_id, sample_index)
        );
        """,
    ),
    (
        # The output split into reasoning and answer; NULL for samples stored before.
        "002_reasoning",
        """
        ALTER TABLE samples ADD COLUMN answer_text TEXT;
        ALTER TABLE samples ADD COLUMN reasoning_text TEXT;
        ALTER TABLE samples ADD COLUMN reasoning_tokens INTEGER;
        """,
    ),
    (
        # Serving metrics: mean inter-token latency, where token counts came from
        # (exact, usage, tokenize, tokenizer), retries spent, cost from catalogue prices,
        # and a managed server's startup time per attempt.
        "003_serving",
        """
        ALTER TABLE samples ADD COLUMN itl_s REAL;
        ALTER TABLE samples ADD COLUMN token_source TEXT;
        ALTER TABLE samples ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE samples ADD COLUMN cost_usd REAL;
        ALTER TABLE attempts ADD COLUMN startup_s REAL;
        """,
    ),
    (
        # Energy per device class: net (idle-subtracted) and gross GPU and CPU/DRAM figures
        # per sample; per attempt the devices, methods, idle watts, the whole-attempt
        # window and what could not be measured (JSON).
        "004_energy_devices",
        """
        ALTER TABLE samples ADD COLUMN gpu_energy_wh REAL;
        ALTER TABLE samples ADD COLUMN gpu_energy_gross_wh REAL;
        ALTER TABLE samples ADD COLUMN cpu_energy_wh REAL;
        ALTER TABLE samples ADD COLUMN cpu_energy_gross_wh REAL;
        ALTER TABLE attempts ADD COLUMN energy_json TEXT;
        """,
    ),
    (
        # Per-sample wall-clock times (epoch seconds) of the final attempt's request
        # sent and reply received: the run's generation window (throughput = tokens ÷
        # wall time, not ÷ summed latencies), which survives kills and resumes.
        "005_sample_times",
        """
        ALTER TABLE samples ADD COLUMN sent_at REAL;
        ALTER TABLE samples ADD COLUMN received_at REAL;
        """,
    ),
    (
        # When a run's settings were last refreshed from a plan (every batch that selects
        # the run, or `fleetbench report --plan`): the latest settings name the stars
        # reference. NULL for runs stored before: their updated_at stands in.
        "006_run_settings_at",
        """
        ALTER TABLE runs ADD COLUMN settings_at REAL;
        """,
    ),
    (
        # Parallel executors: the slot an attempt ran in, the CUDA_VISIBLE_DEVICES its
        # worker was given, and the devices it shared with runs executing at the same
        # time (device-wide meters then measured their sum).
        "007_attempt_placement",
        """
        ALTER TABLE attempts ADD COLUMN slot TEXT;
        ALTER TABLE attempts ADD COLUMN cuda_visible_devices TEXT;
        ALTER TABLE attempts ADD COLUMN shared_device TEXT;
        """,
    ),
    (
        # Rounds: the same run measured again and again (``--repeat``, schedules). A
        # sample is keyed by (run, round, index); stored samples become round 1. SQLite
        # cannot alter a primary key, so the table is rebuilt: create, copy, drop, rename;
        # the columns keep their order, ``round`` comes last (``SELECT *`` reads as before).
        # The index on created_at serves time-range exports (``export samples --since``).
        "008_rounds",
        """
        CREATE TABLE samples_new (
            run_id              TEXT NOT NULL REFERENCES runs(run_id),
            sample_index        INTEGER NOT NULL,
            sample_id           TEXT NOT NULL,
            attempt             INTEGER NOT NULL,
            input_json          TEXT NOT NULL,
            output_text         TEXT NOT NULL,
            prompt_tokens       INTEGER,
            completion_tokens   INTEGER,
            latency_s           REAL,
            ttft_s              REAL,
            finish_reason       TEXT,
            cpu_seconds         REAL,
            energy_wh           REAL,
            energy_method       TEXT NOT NULL,
            scores_json         TEXT,
            error               TEXT,
            created_at          REAL NOT NULL,
            answer_text         TEXT,
            reasoning_text      TEXT,
            reasoning_tokens    INTEGER,
            itl_s               REAL,
            token_source        TEXT,
            retries             INTEGER NOT NULL DEFAULT 0,
            cost_usd            REAL,
            gpu_energy_wh       REAL,
            gpu_energy_gross_wh REAL,
            cpu_energy_wh       REAL,
            cpu_energy_gross_wh REAL,
            sent_at             REAL,
            received_at         REAL,
            round               INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (run_id, round, sample_index)
        );
        INSERT INTO samples_new (run_id, round, sample_index, sample_id, attempt, input_json,
            output_text, prompt_tokens, completion_tokens, latency_s, ttft_s, finish_reason,
            cpu_seconds, energy_wh, energy_method, scores_json, error, created_at,
            answer_text, reasoning_text, reasoning_tokens, itl_s, token_source, retries,
            cost_usd, gpu_energy_wh, gpu_energy_gross_wh, cpu_energy_wh, cpu_energy_gross_wh,
            sent_at, received_at)
        SELECT run_id, 1, sample_index, sample_id, attempt, input_json,
            output_text, prompt_tokens, completion_tokens, latency_s, ttft_s, finish_reason,
            cpu_seconds, energy_wh, energy_method, scores_json, error, created_at,
            answer_text, reasoning_text, reasoning_tokens, itl_s, token_source, retries,
            cost_usd, gpu_energy_wh, gpu_energy_gross_wh, cpu_energy_wh, cpu_energy_gross_wh,
            sent_at, received_at
        FROM samples;
        DROP TABLE samples;
        ALTER TABLE samples_new RENAME TO samples;
        CREATE INDEX samples_created_at ON samples (created_at);
        ALTER TABLE attempts ADD COLUMN rounds TEXT
        """,
    ),
    (
        # Schedules (``fleetbench schedule``): one row per schedule, keyed by its plan and
        # cadence, so that the same command restarted continues it; one row per tick
        # (due time from the fixed start): done/failed with its round, running while it
        # measures, or missed (the scheduler was down) / skipped (a round still ran).
        "009_schedules",
        """
        CREATE TABLE schedules (
            schedule_id TEXT PRIMARY KEY,
            plan_source TEXT NOT NULL,
            cadence     TEXT NOT NULL,
            spec_json   TEXT NOT NULL,
            start_at    REAL NOT NULL,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            status      TEXT NOT NULL
        );
        CREATE TABLE schedule_ticks (
            schedule_id TEXT NOT NULL REFERENCES schedules(schedule_id),
            tick        INTEGER NOT NULL,
            due_at      REAL NOT NULL,
            status      TEXT NOT NULL,
            round       INTEGER,
            started_at  REAL,
            finished_at REAL,
            reason      TEXT,
            PRIMARY KEY (schedule_id, tick)
        )
        """,
    ),
    (
        # Load profiles (backends.load): when each request was due (open loop; NULL
        # closed loop) and when its first attempt was actually sent, epoch seconds. The
        # lag between them shows a client that could not keep the schedule.
        "010_load_send_times",
        """
        ALTER TABLE samples ADD COLUMN intended_send_at REAL;
        ALTER TABLE samples ADD COLUMN actual_send_at REAL;
        """,
    ),
    (
        # Uploads of the results folder to object storage (report/upload.py): one row
        # per try, so a failure is on record and the next round retries.
        "011_uploads",
        """
        CREATE TABLE uploads (
            upload_id   INTEGER PRIMARY KEY AUTOINCREMENT,
            url         TEXT NOT NULL,
            started_at  REAL NOT NULL,
            finished_at REAL,
            status      TEXT NOT NULL,
            files       INTEGER,
            bytes       INTEGER,
            error       TEXT
        )
        """,
    ),
    (
        # What the server itself reports about a request (Ollama's native API: model
        # load, prompt-eval and eval counts and durations), as JSON in seconds; NULL
        # where the server reports nothing (backends.base.GenerationResult.server_timing).
        "012_server_timing",
        """
        ALTER TABLE samples ADD COLUMN server_timing_json TEXT
        """,
    ),
    (
        # The category a task's prompt or question file gave a sample (``input_json``'s
        # ``category``), stored beside it so that the dashboard groups and filters by it
        # without parsing every sample's JSON. The store fills it on insert (derived from
        # ``input_json``, never given by a writer); stored samples are backfilled here.
        # Indexes for the dashboard, whose aggregates then read no sample row (with its
        # prompt and output): ``samples_figures`` holds every column the over-time,
        # overview and retries figures read, keyed by run and round; ``samples_failed``
        # the failed samples only (the failures view); ``samples_category`` lists the
        # categories by seeks and serves the category filter.
        "013_sample_category",
        """
        ALTER TABLE samples ADD COLUMN category TEXT;
        UPDATE samples SET category = json_extract(input_json, '$.category')
            WHERE input_json LIKE '%"category"%' AND json_valid(input_json);
        CREATE INDEX samples_figures ON samples (run_id, round, category, error, latency_s,
            ttft_s, completion_tokens, prompt_tokens, sent_at, received_at, created_at,
            energy_wh, cost_usd, retries);
        CREATE INDEX samples_failed ON samples (run_id, error, round, category, created_at,
            retries) WHERE error IS NOT NULL;
        CREATE INDEX samples_category ON samples (category)
        """,
    ),
    (
        # The report's audit asks every run for its samples cut off while reasoning
        # (``report.audit``: no error, finish_reason 'length', reasoning text): a scan
        # of each run's rows, 0.23-0.35 s a report of 1,000 runs of 1,000 samples. The
        # index holds only those samples (few, often none): 3 ms.
        "014_reasoning_cut_index",
        """
        CREATE INDEX samples_reasoning_cut ON samples (run_id, sample_index)
            WHERE error IS NULL AND finish_reason = 'length' AND reasoning_text != ''
        """,
    ),
]
