package audit

import (
	"context"
	"testing"
)

func TestDiffKeepsOnlyChangedFields(t *testing.T) {
	got := Diff(map[string]any{"name": "a", "stock": 1, "gone": "x"}, map[string]any{"name": "b", "stock": 1, "added": true})
	if len(got) != 3 {
		t.Fatalf("Diff = %v, want name, gone and added", got)
	}
	if got["name"] != [2]any{"a", "b"} || got["gone"] != [2]any{"x", nil} || got["added"] != [2]any{nil, true} {
		t.Fatalf("Diff = %v", got)
	}
}

func TestCauseFromDefaultsToSystem(t *testing.T) {
	if a := CauseFrom(context.Background()).Actor; a != System {
		t.Fatalf("actor = %+v, want system", a)
	}
	ctx := WithCause(context.Background(), Cause{Actor: Actor{Kind: KindUser, ID: "u1", Email: "a@b.c"}, RequestID: "r1"})
	e := New(ctx, "product.update", Target{Type: "product", ID: "p1"}, nil)
	if e.Actor.ID != "u1" || e.RequestID != "r1" || e.Target.ID != "p1" {
		t.Fatalf("entry = %+v", e)
	}
}
