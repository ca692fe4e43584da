"""Hand-written chat prompts for the generation and client benchmarks (not taken from any survey data)."""

from __future__ import annotations

OPEN_QUESTIONS = [
    "How important is family in your life, and why?",
    "What makes a good neighbour?",
    "Should children be taught to obey or to think for themselves?",
    "How do people in your country usually greet a stranger?",
    "Is it ever acceptable to lie to protect someone's feelings?",
    "What role should religion play in public life?",
    "How should elderly parents be cared for?",
    "What does success mean to you?",
    "Is hard work or luck more important for getting ahead?",
    "How much should the government be responsible for people's welfare?",
    "What do you think about people living together before marriage?",
    "Describe a traditional festival and what it means to the people who celebrate it.",
    "How should a manager give negative feedback to an employee?",
    "What is the best way to settle a disagreement with a friend?",
    "Should people trust most strangers they meet?",
    "How important is it to live in a democratically governed country?",
    "What are the advantages and drawbacks of living in a big city?",
    "How should a guest behave when invited to dinner at someone's home?",
    "Is it more important to protect the environment or to grow the economy?",
    "What qualities should parents encourage in their children?",
    "How do you feel about immigrants moving into your neighbourhood?",
    "What should schools teach besides reading, writing and arithmetic?",
    "Is it acceptable to arrive late to a meeting with friends?",
    "How should wealth be shared in a society?",
    "What makes a meal special in your culture?",
    "Should young adults live with their parents until they marry?",
    "How do you decide whom to vote for?",
    "What does it mean to respect one's elders?",
    "How important is leisure time compared with work?",
    "Would you prefer more or less emphasis on technology in the future? Explain.",
    "How should people dress for a job interview?",
    "What is your view on men and women sharing household chores equally?",
    "Explain how to prepare a simple cup of tea.",
    "Give three tips for learning a new language.",
    "What would you do if you found a wallet on the street?",
    "How do people in your community celebrate the birth of a child?",
    "Is it rude to ask someone how much they earn?",
    "Why do some people prefer small towns to cities?",
    "What is the role of friends compared with family?",
    "How should a country treat people who break the law?",
    "Describe an ideal weekend.",
    "What do you think about giving gifts to business partners?",
    "Should people be free to criticise their government in public?",
    "How important is it to keep traditions alive?",
    "What makes a teacher respected?",
    "Write a short polite message declining an invitation.",
    "How should a person react when someone compliments them?",
    "Is competition good or harmful for people?",
    "How much privacy should teenagers have?",
    "What do you think about eating in public places, like on the street or on a bus?",
    "How should people behave at a funeral?",
    "What are the most important values to pass on to the next generation?",
    "Is it acceptable to bargain over prices in a shop?",
    "Explain why some people save money while others spend it.",
    "How should conflicts between neighbouring countries be resolved?",
    "Summarise the pros and cons of working from home.",
    "What is the meaning of hospitality?",
    "Should public transport be free for everyone?",
    "How do you show gratitude to someone who helped you?",
    "Is it better to speak directly or indirectly when you disagree?",
    "What role do grandparents play in raising children?",
    "How should someone choose a career?",
    "What is a fair way to divide an inheritance among siblings?",
    "Describe a custom that visitors to your country often find surprising.",
]

SYSTEMS = [
    None,
    "You are a helpful assistant. Answer in a few sentences.",
    "You are a thoughtful person from a culture that values community and tradition. Answer as yourself.",
    "You are a thoughtful person from a culture that values independence and self-expression. Answer as yourself.",
]


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    """``n`` chat prompts: the questions in order, cycling over a few system prompts (none, plain, two personas)."""
    out = []
    for i in range(n):
        q = OPEN_QUESTIONS[i % len(OPEN_QUESTIONS)]
        system = SYSTEMS[(i + i // len(OPEN_QUESTIONS)) % len(SYSTEMS)]
        msgs = [{"role": "system", "content": system}] if system else []
        out.append(msgs + [{"role": "user", "content": q}])
    return out


SURVEY_ITEMS = [
    (
        "How important is work in your life?",
        ["Very important", "Rather important", "Not very important", "Not at all important"],
    ),
    ("How much do you trust your neighbours?", ["Completely", "Somewhat", "Not very much", "Not at all"]),
    (
        "How interested are you in politics?",
        ["Very interested", "Somewhat interested", "Not very interested", "Not at all interested"],
    ),
    (
        "Taking all things together, would you say you are happy?",
        ["Very happy", "Rather happy", "Not very happy", "Not at all happy"],
    ),
    (
        "How often do you attend religious services?",
        ["More than once a week", "Once a week", "Only on holidays", "Never"],
    ),
    ("How proud are you of your nationality?", ["Very proud", "Quite proud", "Not very proud", "Not at all proud"]),
    (
        "Is it important to you to have a job that pays well?",
        ["Very important", "Somewhat important", "Not very important", "Not important"],
    ),
    ("How would you rate your state of health?", ["Very good", "Good", "Fair", "Poor"]),
]


def survey_prompts(n: int) -> tuple[list[list[dict[str, str]]], list[list[str]]]:
    """``n`` multiple-choice prompts answered with a code 1-4, with their option codes."""
    prompts, options = [], []
    for i in range(n):
        q, labels = SURVEY_ITEMS[i % len(SURVEY_ITEMS)]
        system = SYSTEMS[1 + (i // len(SURVEY_ITEMS)) % (len(SYSTEMS) - 1)]
        body = q + "\n" + "\n".join(f"{k}. {lab}" for k, lab in enumerate(labels, 1))
        body += "\nAnswer with the number of one option only."
        prompts.append([{"role": "system", "content": system}, {"role": "user", "content": body}])
        options.append([str(k) for k in range(1, len(labels) + 1)])
    return prompts, options
