-- CreateEnum
CREATE TYPE "AuthType" AS ENUM ('password', 'key');

-- CreateEnum
CREATE TYPE "ServerStatus" AS ENUM ('active', 'inactive');

-- CreateEnum
CREATE TYPE "NodeType" AS ENUM ('Remote', 'Socket');

-- CreateTable
CREATE TABLE "servers" (
    "id" UUID NOT NULL,
    "number" SERIAL NOT NULL,
    "organization_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "hostname" TEXT NOT NULL DEFAULT '',
    "port" INTEGER NOT NULL DEFAULT 22,
    "username" TEXT NOT NULL DEFAULT '',
    "auth_type" "AuthType",
    "sealed_credential" TEXT,
    "masked_credential" TEXT NOT NULL DEFAULT '',
    "description" TEXT NOT NULL DEFAULT '',
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "status" "ServerStatus" NOT NULL DEFAULT 'active',
    "node_type" "NodeType" NOT NULL DEFAULT 'Remote',
    "host_key_fingerprint" TEXT,
    "health_status" TEXT NOT NULL DEFAULT 'unknown',
    "last_health_check_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "servers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "server_groups" (
    "id" UUID NOT NULL,
    "number" SERIAL NOT NULL,
    "organization_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "server_groups_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "server_group_members" (
    "group_id" UUID NOT NULL,
    "server_id" UUID NOT NULL,

    CONSTRAINT "server_group_members_pkey" PRIMARY KEY ("group_id","server_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "servers_number_key" ON "servers"("number");

-- CreateIndex
CREATE UNIQUE INDEX "servers_organization_id_name_key" ON "servers"("organization_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "server_groups_number_key" ON "server_groups"("number");

-- CreateIndex
CREATE UNIQUE INDEX "server_groups_organization_id_name_key" ON "server_groups"("organization_id", "name");

-- CreateIndex
CREATE INDEX "server_group_members_server_id_idx" ON "server_group_members"("server_id");

-- AddForeignKey
ALTER TABLE "server_group_members" ADD CONSTRAINT "server_group_members_group_id_fkey" FOREIGN KEY ("group_id") REFERENCES "server_groups"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "server_group_members" ADD CONSTRAINT "server_group_members_server_id_fkey" FOREIGN KEY ("server_id") REFERENCES "servers"("id") ON DELETE CASCADE ON UPDATE CASCADE;
