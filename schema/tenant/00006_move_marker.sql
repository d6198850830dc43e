-- +goose Up
-- A tenant move's marker (DESIGN.md section 12): with the tenant's writes
-- paused on the source, the move writes a fresh token here and waits until
-- the target's copy shows it; logical replication applies in commit order,
-- so the target then holds every write committed before the pause. One row
-- at most, never read by the application.
CREATE TABLE move_marker (
    id    integer NOT NULL PRIMARY KEY CHECK (id = 1),
    token uuid    NOT NULL
);

-- +goose Down
DROP TABLE move_marker;
