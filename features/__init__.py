"""Feature-store layer: declarative feature definitions over the gold tables and the
read API (point-in-time and latest). The gold tables it will serve exist
(gold/user_sequences, gold/user_bse, gold/training_examples); the definitions
and `seqlake features get` come with the feature-store issue."""
