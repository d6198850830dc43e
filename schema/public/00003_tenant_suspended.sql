-- +goose Up
-- A suspended tenant keeps its schema, index and events (its workers still
-- drain them); its routes answer 403 until it is resumed.
ALTER TABLE tenants DROP CONSTRAINT tenants_state_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_state_check
    CHECK (state IN ('provisioning', 'active', 'suspended', 'deleting'));

-- +goose Down
UPDATE tenants SET state = 'active' WHERE state = 'suspended';
ALTER TABLE tenants DROP CONSTRAINT tenants_state_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_state_check
    CHECK (state IN ('provisioning', 'active', 'deleting'));
