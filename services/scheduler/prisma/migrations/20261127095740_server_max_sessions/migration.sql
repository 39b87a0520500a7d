-- AlterTable
ALTER TABLE "tasks" ADD COLUMN     "server_max_sessions" INTEGER NOT NULL DEFAULT 0;
