-- CreateEnum
CREATE TYPE "TaskKind" AS ENUM ('command', 'script');

-- CreateEnum
CREATE TYPE "TaskStatus" AS ENUM ('queued', 'running', 'completed', 'failed', 'canceled', 'timed_out');

-- CreateTable
CREATE TABLE "tasks" (
    "id" UUID NOT NULL,
    "number" BIGSERIAL NOT NULL,
    "organization_id" UUID NOT NULL,
    "server_id" UUID NOT NULL,
    "server_name" TEXT NOT NULL DEFAULT '',
    "server_hostname" TEXT NOT NULL DEFAULT '',
    "server_port" INTEGER NOT NULL DEFAULT 22,
    "server_username" TEXT NOT NULL DEFAULT '',
    "host_key_fingerprint" TEXT NOT NULL DEFAULT '',
    "kind" "TaskKind" NOT NULL,
    "command" TEXT NOT NULL DEFAULT '',
    "args" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "args_text" TEXT NOT NULL DEFAULT '',
    "script" TEXT NOT NULL DEFAULT '',
    "shell" TEXT NOT NULL DEFAULT '',
    "env" JSONB NOT NULL DEFAULT '{}',
    "timeout_seconds" INTEGER NOT NULL,
    "priority" SMALLINT NOT NULL DEFAULT 0,
    "status" "TaskStatus" NOT NULL DEFAULT 'queued',
    "exit_code" INTEGER,
    "reason_code" TEXT NOT NULL DEFAULT '',
    "reason" TEXT NOT NULL DEFAULT '',
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "safe_to_retry" BOOLEAN NOT NULL DEFAULT false,
    "executor_id" TEXT NOT NULL DEFAULT '',
    "dispatched_at" TIMESTAMPTZ(3),
    "dispatch_seq" BIGINT,
    "cancel_requested_at" TIMESTAMPTZ(3),
    "output_chunks" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "created_by" TEXT NOT NULL DEFAULT '',
    "duplicated_from" UUID,

    CONSTRAINT "tasks_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "tasks_number_key" ON "tasks"("number");

-- CreateIndex
CREATE INDEX "tasks_organization_id_created_at_idx" ON "tasks"("organization_id", "created_at");

-- CreateIndex
CREATE INDEX "tasks_organization_id_status_created_at_idx" ON "tasks"("organization_id", "status", "created_at");

-- CreateIndex
CREATE INDEX "tasks_organization_id_server_id_created_at_idx" ON "tasks"("organization_id", "server_id", "created_at");

-- CreateIndex
CREATE INDEX "tasks_status_dispatched_at_priority_created_at_idx" ON "tasks"("status", "dispatched_at", "priority" DESC, "created_at");

-- CreateIndex
CREATE INDEX "tasks_server_id_status_idx" ON "tasks"("server_id", "status");
