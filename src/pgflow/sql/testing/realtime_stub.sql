-- A stand-in for Supabase Realtime on plain PostgreSQL, for tests only: events sent by pgflow
-- land in realtime.messages where tests can read them. Each object is created only when absent,
-- so running this against a real Supabase database changes nothing.
CREATE SCHEMA IF NOT EXISTS realtime;

-- Supabase partitions this table by inserted_at; tests do not need that.
CREATE TABLE IF NOT EXISTS realtime.messages (
    topic text NOT NULL,
    extension text NOT NULL,
    payload jsonb,
    event text,
    private boolean DEFAULT false,
    updated_at timestamp DEFAULT now(),
    inserted_at timestamp DEFAULT now(),
    id uuid DEFAULT gen_random_uuid()
);

DO $stub$
BEGIN
    IF to_regprocedure('realtime.send(jsonb,text,text,boolean)') IS NULL THEN
        -- Like Supabase's own, a failed send is only a WARNING: broadcasting must never roll
        -- back the transaction that caused it.
        EXECUTE $fn$
            CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
            RETURNS void
            LANGUAGE plpgsql
            AS $body$
            BEGIN
                BEGIN
                    INSERT INTO realtime.messages (payload, event, topic, private, extension)
                    VALUES (
                        CASE
                            WHEN payload ? 'id' THEN payload
                            ELSE payload || jsonb_build_object('id', gen_random_uuid())
                        END,
                        event,
                        topic,
                        private,
                        'broadcast'
                    );
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'ErrorSendingBroadcastMessage: %', SQLERRM;
                END;
            END;
            $body$
        $fn$;
    END IF;
END
$stub$;
