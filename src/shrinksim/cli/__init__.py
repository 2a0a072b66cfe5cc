"""The command line the rules call: ``python -m shrinksim STAGE ...`` (:mod:`.main`), one
module per study of stages (:mod:`.study`, :mod:`.sbc`, :mod:`.userdata`)."""
