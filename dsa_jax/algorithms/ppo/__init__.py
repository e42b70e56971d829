"""PPO over independent actors with a global critic: the shared program, IAGC and PaI."""
