-- CreateTable
CREATE TABLE "pem_files" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "filename" TEXT NOT NULL,
    "size" INTEGER NOT NULL,
    "sealed_key" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pem_files_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "pem_files_organization_id_idx" ON "pem_files"("organization_id");
