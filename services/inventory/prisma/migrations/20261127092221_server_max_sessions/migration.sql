-- AlterTable
ALTER TABLE "servers" ADD COLUMN     "max_sessions" INTEGER;
