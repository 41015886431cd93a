-- 0006: secrets sealed at rest. sealed_secret holds a credential's secret
-- (the PIN of a generated key, the code of a key-box access, the token of
-- an invite), encrypted with AES-256-GCM under a key kept outside this file
-- and bound to the credential's id. The PIN hashes and their key, which sat
-- in this same file, are dropped: with both, every PIN could be recovered
-- by trying each candidate.
ALTER TABLE credentials ADD COLUMN sealed_secret TEXT;
UPDATE credentials SET pin_hash = '' WHERE pin_hash <> '';
DELETE FROM meta WHERE key = 'pin_key';
