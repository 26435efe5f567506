"""Planning: which pairs go in which pass within the memory budget, and the layout each
input is seeded in (:mod:`.seeding`); which pairs can be nonzero at all
(:mod:`.pattern`); colours of the inputs that let one pass recover many entries
(:mod:`.colour`)."""
