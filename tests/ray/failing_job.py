"""A Ray job that fails the way most do: a traceback at the end of its output."""


def main() -> None:
    print("working", flush=True)
    raise RuntimeError("boom from the truth test")


main()
