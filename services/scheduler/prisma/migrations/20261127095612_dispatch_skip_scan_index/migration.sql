-- DropIndex
DROP INDEX "tasks_server_id_status_idx";

-- DropIndex
DROP INDEX "tasks_status_dispatched_at_priority_created_at_idx";

-- CreateIndex
CREATE INDEX "tasks_status_server_id_priority_created_at_number_idx" ON "tasks"("status", "server_id", "priority" DESC, "created_at", "number");

-- CreateIndex
CREATE INDEX "tasks_status_dispatched_at_idx" ON "tasks"("status", "dispatched_at");
